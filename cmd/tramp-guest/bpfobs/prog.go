package bpfobs

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/cilium/ebpf/asm"
)

// observerSpec describes one observer program to build.
type observerSpec struct {
	Index       int    // program index, stored in each record
	Kind        string // fentry | fexit | fmod_ret | fsession | freplace
	Cookie      bool   // call bpf_session_cookie (fsession: read, write and record it)
	IP          bool   // call bpf_get_func_ip
	Returns     int64  // value in R0 at exit
	MapFD       int    // observation map
	IsReturnID  uint32 // BTF id of kfunc bpf_session_is_return (fsession)
	CookieID    uint32 // BTF id of kfunc bpf_session_cookie (fsession+Cookie)
	CookieValue uint64 // value written to the session cookie at entry
	Frame       bool   // dump the stack words around ctx with bpf_probe_read_kernel
}

func kfuncCall(id uint32) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call),
		Src:      asm.PseudoKfuncCall,
		Constant: int64(id),
	}
}

// fetchAddDW is "src = atomic_fetch_add((u64 *)(dst + off), src)".
// cilium/ebpf v0.22.0's asm.FetchAdd marshals with imm 0 (a plain,
// non-fetching add: the immediate is computed before the atomic op is
// folded in), so the instruction is spelled out here with imm =
// BPF_ADD|BPF_FETCH (0x01).
func fetchAddDW(dst, src asm.Register, off int16) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.OpCode(asm.StXClass).SetMode(asm.AtomicMode).SetSize(asm.DWord),
		Dst:      dst,
		Src:      src,
		Offset:   off,
		Constant: 0x01,
	}
}

// movImm64 loads v into dst, with a 2-slot ld_imm64 only when needed.
func movImm64(dst asm.Register, v int64) asm.Instruction {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		return asm.Mov.Imm(dst, int32(v))
	}
	return asm.LoadImm(dst, v, asm.DWord)
}

func hasRet(kind string) bool {
	kind = strings.TrimSuffix(kind, ".multi")
	return kind == "fexit" || kind == "fmod_ret" || kind == "fsession"
}

// isSession says whether the kind runs at entry and exit (fsession,
// fsession.multi).
func isSession(kind string) bool { return strings.TrimSuffix(kind, ".multi") == "fsession" }

// buildObserver returns the instructions of an observer program. Every
// invocation takes a slot from the global counter in map slot 0 (atomic
// fetch-add) and fills the record in slot 1+order (layout in record.go).
func buildObserver(s observerSpec) (asm.Instructions, error) {
	if isSession(s.Kind) && s.IsReturnID == 0 {
		return nil, fmt.Errorf("fsession needs the BTF id of bpf_session_is_return")
	}
	if s.Cookie && s.CookieID == 0 {
		return nil, fmt.Errorf("cookie needs the BTF id of bpf_session_cookie")
	}
	const (
		ctx  = asm.R6
		rec  = asm.R7
		tmp  = asm.R8
		isRt = asm.R9
	)
	flags := int32(0)
	if hasRet(s.Kind) {
		flags |= recFlagRet
	}
	if s.IP {
		flags |= recFlagIP
	}
	if s.Cookie && isSession(s.Kind) {
		flags |= recFlagCookie
	}
	if s.Frame {
		flags |= recFlagFrame
	}
	in := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		// Slot 0 holds the counter.
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, s.MapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		fetchAddDW(asm.R0, asm.R1, 0),
		asm.Mov.Reg(tmp, asm.R1),
		asm.JGE.Imm(asm.R1, recEntries-1, "out"),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, s.MapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(rec, asm.R0),
		asm.StoreMem(rec, offOrder, tmp, asm.DWord),
		asm.StoreImm(rec, offProg, int64(s.Index), asm.Word),
	}
	switch strings.TrimSuffix(s.Kind, ".multi") {
	case "fsession":
		// bpf_session_is_return(ctx): the verifier inlines it for fsession
		// (bpf_fixup_kfunc_call).
		in = append(in,
			asm.Mov.Reg(asm.R1, ctx),
			kfuncCall(s.IsReturnID),
			asm.Mov.Reg(isRt, asm.R0),
			asm.Add.Imm(asm.R0, phaseEntry),
			asm.StoreMem(rec, offPhase, asm.R0, asm.Word),
		)
	case "fexit":
		in = append(in, asm.StoreImm(rec, offPhase, phaseExit, asm.Word))
	case "fmod_ret":
		in = append(in, asm.StoreImm(rec, offPhase, phaseModRet, asm.Word))
	default:
		in = append(in, asm.StoreImm(rec, offPhase, phaseEntry, asm.Word))
	}
	in = append(in,
		asm.StoreImm(rec, offFlags, int64(flags), asm.Word),
		asm.Mov.Reg(asm.R1, ctx),
		asm.FnGetFuncArgCnt.Call(),
		asm.StoreMem(rec, offArgCnt, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(rec, offArgErr, asm.R1, asm.DWord),
	)
	for i := 0; i < maxArgs; i++ {
		in = append(in,
			asm.Mov.Imm(asm.R1, int32(i)),
			asm.StoreMem(rec, offArgsOK, asm.R1, asm.DWord),
			asm.Mov.Reg(asm.R1, ctx),
			asm.Mov.Imm(asm.R2, int32(i)),
			asm.Mov.Reg(asm.R3, rec),
			asm.Add.Imm(asm.R3, int32(offArgs+8*i)),
			asm.FnGetFuncArg.Call(),
			asm.JNE.Imm(asm.R0, 0, "argfail"),
		)
	}
	in = append(in,
		asm.Mov.Imm(asm.R1, maxArgs),
		asm.StoreMem(rec, offArgsOK, asm.R1, asm.DWord),
		asm.Ja.Label("argdone"),
		asm.StoreMem(rec, offArgErr, asm.R0, asm.DWord).WithSymbol("argfail"),
		asm.Mov.Reg(asm.R1, ctx).WithSymbol("argdone"),
	)
	if hasRet(s.Kind) {
		in = append(in,
			asm.Mov.Reg(asm.R1, ctx),
			asm.Mov.Reg(asm.R2, rec),
			asm.Add.Imm(asm.R2, offRet),
			asm.FnGetFuncRet.Call(),
			asm.StoreMem(rec, offRetStatus, asm.R0, asm.DWord),
		)
	}
	if s.IP {
		in = append(in,
			asm.Mov.Reg(asm.R1, ctx),
			asm.FnGetFuncIp.Call(),
			asm.StoreMem(rec, offIP, asm.R0, asm.DWord),
		)
	}
	in = append(in,
		asm.Mov.Reg(asm.R1, ctx),
		asm.FnGetAttachCookie.Call(),
		asm.StoreMem(rec, offAttachCookie, asm.R0, asm.DWord),
		// Storing a pointer into a map needs allow_ptr_leaks (root).
		asm.StoreMem(rec, offCtx, ctx, asm.DWord),
	)
	if flags&recFlagCookie != 0 {
		in = append(in,
			asm.Mov.Reg(asm.R1, ctx),
			kfuncCall(s.CookieID),
			asm.Mov.Reg(tmp, asm.R0),
			asm.StoreMem(rec, offCookiePtr, tmp, asm.DWord),
			asm.LoadMem(asm.R1, tmp, 0, asm.DWord),
			asm.StoreMem(rec, offCookieRead, asm.R1, asm.DWord),
			asm.JNE.Imm(isRt, 0, "cookiedone"),
			asm.LoadImm(asm.R1, int64(s.CookieValue), asm.DWord),
			asm.StoreMem(tmp, 0, asm.R1, asm.DWord),
			asm.StoreMem(rec, offCookieWritten, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("cookiedone"),
		)
	}
	if s.Cookie && !isSession(s.Kind) {
		// A non-session program that calls bpf_session_cookie: the case
		// asks what the verifier says (its kfunc filter refuses it for
		// everything but session programs).
		in = append(in,
			asm.Mov.Reg(asm.R1, ctx),
			kfuncCall(s.CookieID),
		)
	}
	if s.Frame {
		// Reload ctx from the record: it comes back as a scalar, so it may
		// be used as a plain address for bpf_probe_read_kernel.
		in = append(in,
			asm.LoadMem(asm.R3, rec, offCtx, asm.DWord),
			asm.Add.Imm(asm.R3, -frameBelow),
			asm.Mov.Reg(asm.R1, rec),
			asm.Add.Imm(asm.R1, offFrame),
			asm.Mov.Imm(asm.R2, frameWords*8),
			asm.FnProbeReadKernel.Call(),
			asm.StoreMem(rec, offFrameStatus, asm.R0, asm.DWord),
		)
	}
	in = append(in,
		asm.LoadImm(asm.R1, recMagic, asm.DWord),
		asm.StoreMem(rec, offMagic, asm.R1, asm.DWord),
		movImm64(asm.R0, s.Returns).WithSymbol("out"),
		asm.Return(),
	)
	return in, nil
}

// trivialProg is "r0 = 0; exit", used for trigger and probe programs.
func trivialProg() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}

func marshalInsns(in asm.Instructions) ([]byte, error) {
	var buf bytes.Buffer
	if err := in.Marshal(&buf, nativeOrder); err != nil { // struct bpf_insn in the kernel's byte order
		return nil, err
	}
	return buf.Bytes(), nil
}

// attachTypeOf maps Prog.Kind to the program type and expected attach type.
func attachTypeOf(kind string) (progType, attachType uint32, err error) {
	switch kind {
	case "fentry":
		return progTypeTracing, attachFentry, nil
	case "fexit":
		return progTypeTracing, attachFexit, nil
	case "fmod_ret":
		return progTypeTracing, attachModRet, nil
	case "fsession":
		return progTypeTracing, attachFsession, nil
	case "freplace":
		return progTypeExt, 0, nil
	case "fentry.multi":
		return progTypeTracing, attachFentryMulti, nil
	case "fexit.multi":
		return progTypeTracing, attachFexitMulti, nil
	case "fsession.multi":
		return progTypeTracing, attachFsessionMulti, nil
	}
	return 0, 0, fmt.Errorf("unknown program kind %q", kind)
}
