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

import (
	"fmt"
	"runtime"
	"strings"
)

// Arch is a guest architecture, spelled as tramp spells it on the command
// line: "x86_64" or "arm64".
type Arch string

// The supported guest architectures.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// Arches lists the supported architectures.
var Arches = []Arch{X86_64, ARM64}

// ParseArch accepts x86_64/amd64/x86 and arm64/aarch64.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "x86_64", "amd64", "x86", "x86-64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", s)
}

// Deb is the Debian architecture name: amd64 or arm64.
func (a Arch) Deb() string {
	if a == X86_64 {
		return "amd64"
	}
	return string(a)
}

// GOARCH is the Go architecture name.
func (a Arch) GOARCH() string { return a.Deb() }

// HostArch is the architecture tramp itself runs on, or "" if it is neither
// supported architecture.
func HostArch() Arch {
	a, err := ParseArch(runtime.GOARCH)
	if err != nil {
		return ""
	}
	return a
}
