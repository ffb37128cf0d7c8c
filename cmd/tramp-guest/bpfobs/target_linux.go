//go:build linux

package bpfobs

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"

	"golang.org/x/sys/unix"
)

// loadedTarget is a BPF-program target loaded for one job.
type loadedTarget struct {
	fd, btfFD, mapFD int
	calleeFD         int    // the program in the program array (TailCallTaken)
	btfID            uint32 // the FUNC's id in the program's BTF
	id               uint32 // program id
	bpfFunc          uint64 // the JITed image: the traced address
	tag              string
}

func (t *loadedTarget) close() {
	for _, fd := range []int{t.fd, t.mapFD, t.calleeFD, t.btfFD} {
		if fd > 0 {
			unix.Close(fd)
		}
	}
}

// loadTarget loads the job's target program: its BTF, the program array
// for the tail call, then the socket filter with func_info.
func loadTarget(name string, tp *guestapi.TargetProg) (*loadedTarget, error) {
	raw, ids, err := targetBTF(tp, name)
	if err != nil {
		return nil, err
	}
	t := &loadedTarget{fd: -1, mapFD: -1, calleeFD: -1, btfID: ids[targetIndex(tp)]}
	var log string
	if t.btfFD, log, err = loadBTF(raw); err != nil {
		return nil, fmt.Errorf("BTF_LOAD of the target's BTF: %s: %s", ErrnoName(err), truncLog(log))
	}
	if tp.TailCall {
		if t.mapFD, err = newProgArray(1); err != nil {
			t.close()
			return nil, fmt.Errorf("program array: %s", ErrnoName(err))
		}
	}
	if tp.TailCallTaken {
		callee, err := marshalInsns(calleeInsns())
		if err != nil {
			t.close()
			return nil, err
		}
		if t.calleeFD, log, err = loadProg(loadSpec{name: "tramp_callee", progType: progTypeSocketFilter, insns: callee}); err != nil {
			t.close()
			return nil, fmt.Errorf("load of the tail-call callee: %s: %s", ErrnoName(err), truncLog(log))
		}
		if err := mapUpdateU32(t.mapFD, 0, uint32(t.calleeFD)); err != nil {
			t.close()
			return nil, fmt.Errorf("program array update: %s", ErrnoName(err))
		}
	}
	in, offs := targetInsns(tp, t.mapFD)
	insns, err := marshalInsns(in)
	var fi []byte
	if err == nil {
		fi, err = funcInfo(offs, ids)
	}
	if err != nil {
		t.close()
		return nil, err
	}
	t.fd, log, err = loadProg(loadSpec{name: name, progType: progTypeSocketFilter, insns: insns,
		btfFD: t.btfFD, funcInfo: fi})
	if err != nil {
		t.close()
		return nil, fmt.Errorf("load of the target program: %s: %s", ErrnoName(err), truncLog(log))
	}
	info, err := getProgInfo(t.fd)
	var ksyms []uint64
	if err == nil {
		ksyms, err = progKsyms(t.fd, len(ids))
	}
	if err != nil {
		t.close()
		return nil, fmt.Errorf("target program info: %s", ErrnoName(err))
	}
	if len(ksyms) != len(ids) {
		t.close()
		return nil, fmt.Errorf("target program: %d JITed functions, the guest built %d", len(ksyms), len(ids))
	}
	// bpf_check_attach_target: the traced address is the subprogram's
	// bpf_func (aux->func[subprog]), the main one's for subprog 0.
	t.id, t.bpfFunc = info.ID, ksyms[targetIndex(tp)]
	t.tag = fmt.Sprintf("%x", info.Tag[:])
	return t, nil
}
