// Package qemu boots a kernel and initramfs under QEMU and watches the run:
// kernel messages arrive on the serial console (captured from QEMU's
// standard output), results on a dedicated virtio-serial port backed by a
// file, decoded as they arrive with package channel.
//
// Run turns every way a boot can go wrong into a *RunError with a Kind and
// the console lines that explain it: QEMU missing, the guest hung (timeout),
// the kernel never said hello, a panic, a kernel WARNING/BUG/Oops splat (as
// in the kernel's BPF CI, a warning fails the run), a corrupted or truncated
// record, QEMU killed from outside, QEMU dying or stopping the guest itself,
// or the guest's own error record. Every failure quotes QEMU's own stderr.
// The Result is returned in every case and keeps each record received
// before the failure.
//
// Decide chooses the accelerator: KVM only where a probe boot shows it runs
// the guest (accel.go), with known QEMU/KVM quirks retried with their fix;
// else TCG, with the reason said once.
package qemu
