//go:build linux

package bpfobs

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"syscall"

	"github.com/cilium/ebpf/asm"
)

// progTypeRawTracepoint is BPF_PROG_TYPE_RAW_TRACEPOINT: the driver's
// type, which BPF_PROG_TEST_RUN runs without a tracepoint.
const progTypeRawTracepoint = 17

// benchLoop makes n calls of the traced function.
type benchLoop interface {
	calls(n int) error
	close()
}

// syscallLoop: n getpgid(0) calls. RawSyscall skips the Go scheduler's
// entersyscall/exitsyscall, so the loop is the syscall and a few
// instructions.
type syscallLoop struct{}

func (syscallLoop) calls(n int) error {
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_GETPGID, 0, 0, 0)
	}
	return nil
}

func (syscallLoop) close() {}

// driverLoop is the kernel bench's method (trigger_driver in the
// selftests' trigger_bench.c, trig-fentry/fexit): a raw_tp program that
// calls bpf_get_numa_node_id DriverBatch times, run with
// BPF_PROG_TEST_RUN (which takes no repeat count for raw_tp, so one
// syscall per batch).
type driverLoop struct{ fd int }

func newDriverLoop() (*driverLoop, error) {
	var insns asm.Instructions
	for i := 0; i < guestapi.DriverBatch; i++ {
		insns = append(insns, asm.FnGetNumaNodeId.Call())
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
	raw, err := marshalInsns(insns)
	if err != nil {
		return nil, err
	}
	fd, log, err := loadProg(loadSpec{name: "bench_driver", progType: progTypeRawTracepoint, insns: raw})
	if err != nil {
		return nil, fmt.Errorf("loading the driver program: %s: %s", ErrnoName(err), truncLog(log))
	}
	return &driverLoop{fd: fd}, nil
}

// calls rounds n up to whole batches.
func (d *driverLoop) calls(n int) error {
	for i := 0; i < n; i += guestapi.DriverBatch {
		if _, _, err := testRun(d.fd); err != nil {
			return fmt.Errorf("BPF_PROG_TEST_RUN of the driver: %w", err)
		}
	}
	return nil
}

func (d *driverLoop) close() { syscall.Close(d.fd) }
