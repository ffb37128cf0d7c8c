// Package vm is the host side of tramp's virtual-machine harness.
//
// It boots unmodified Debian kernels under QEMU with a small static Go
// program (cmd/tramp-guest) as PID 1 and collects the guest's results over
// a dedicated virtio-serial port. The work is split into subpackages:
//
//   - kernels: fetch and cache Debian cloud kernels through apt.
//   - initramfs: write the gzip'd newc cpio that carries the guest.
//   - channel: the framed, checksummed record format guest→host.
//   - guestapi: job and record types shared by host and guest.
//   - qemu: build the QEMU command line, run it, watch console and channel.
//   - harness: glue: build the guest, pack an initramfs, boot a job.
//   - cli: the "tramp vm" subcommands.
package vm
