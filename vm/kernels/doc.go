// Package kernels fetches, caches and locates the Linux kernels that tramp
// boots: unmodified Debian cloud kernels named by fixed profiles
// (debian-7.2.13, debian-7.3.4, debian-6.18.15), or a kernel image file
// supplied by the user.
//
// Packages come through the machine's own apt, never from a hard-coded
// mirror: a temporary sources list reuses the URI and keyring of the
// machine's Debian entry for the suites sid and trixie-backports, apt
// verifies the archive signatures, and dpkg-deb unpacks the kernel. Results
// are cached under os.UserCacheDir()/tramp/kernels/<profile>/<arch>/ and used
// offline afterwards.
package kernels
