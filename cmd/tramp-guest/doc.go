// Command tramp-guest is the init process (PID 1) of tramp's test virtual
// machines. The host (package vm/harness) builds it as a static binary for
// the guest's architecture and puts it into the initramfs as /init.
//
// It mounts proc, sysfs and devtmpfs, sets the BPF sysctls, finds the
// virtio-serial port named guestapi.ResultsPortName, and sends framed
// records (package vm/channel) to the host: a "hello" record describing the
// kernel, whatever the job produces, then "done" or "error". It always ends
// by powering the machine off, so that QEMU exits; PID 1 must never return,
// since that panics the kernel.
//
// For debugging outside a VM, setting TRAMP_GUEST_RESULTS=<file> makes it
// skip the mounts, sysctls and power-off and write its records to that file.
package main
