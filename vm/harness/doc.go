// Package harness puts the VM pieces together: it builds the guest binary
// (cmd/tramp-guest) for an architecture, packs it with a job into an
// initramfs, resolves the kernel and boots it with package qemu.
//
// A typical caller:
//
//	res, err := harness.Run(ctx, harness.Boot{
//		Kernel: "debian-7.2.13",
//		Arch:   kernels.X86_64,
//		Job:    guestapi.Job{Kind: guestapi.JobBPF, Params: params},
//		QEMU:   qemu.Config{Timeout: time.Minute, OnRecord: handle},
//	})
//
// res.Records holds every record received, also when err is non-nil.
package harness
