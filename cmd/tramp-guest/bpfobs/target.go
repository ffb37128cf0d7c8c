package bpfobs

import (
	"encoding/binary"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"strings"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/bpftramp/tramp/trampoline"
)

// testRunPacketLen is the length of the zeroed packet a socket filter
// target runs on (bpf_prog_test_run_skb wants at least an Ethernet header).
const testRunPacketLen = 64

// check says whether the guest can build this target: the main function
// of a socket filter takes the context pointer and returns a 32-bit value.
func checkTarget(t *guestapi.TargetProg, name string) error {
	if t == nil {
		return fmt.Errorf("no target program")
	}
	if !validFuncName(name) {
		return fmt.Errorf("BPF-program target: %q is not a C identifier", name)
	}
	if name == subprogName || name == mainName {
		return fmt.Errorf("BPF-program target: %s is the name of the guest's own function, pick another", name)
	}
	if t.GlobalSubprog && t.TailCallSubprog {
		return fmt.Errorf("BPF-program target %s: a global subprogram target makes its tail call itself (not through another subprogram)", name)
	}
	if (t.TailCallSubprog || t.TailCallTaken) && !t.TailCall {
		return fmt.Errorf("BPF-program target %s: a tail call through a subprogram or a taken one is still a tail call (TailCall unset)", name)
	}
	if len(t.Args) != 1 || t.Args[0] != "ptr" || (t.Ret != "s32" && t.Ret != "u32") {
		return fmt.Errorf("BPF-program target %s: the guest builds a socket filter, whose function is (ptr) -> s32 or (ptr) -> u32, not (%s) -> %s",
			name, strings.Join(t.Args, ", "), t.Ret)
	}
	return nil
}

func validFuncName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// subprogName is the static subprogram that makes the tail call when
// TailCallSubprog is set; mainName the main function that calls a
// GlobalSubprog target.
const (
	subprogName = "tramp_tail"
	mainName    = "tramp_main"
)

// targetIndex is the target's function index in the program (subprog).
func targetIndex(t *guestapi.TargetProg) int {
	if t.GlobalSubprog {
		return 1
	}
	return 0
}

// targetBTF is the BTF of the target program: "<ret> name(struct
// __sk_buff *ctx)" with global linkage (and, with TailCallSubprog, a
// static subprogram of the same prototype). It returns the raw blob for
// BPF_BTF_LOAD and the FUNC ids in program order; the one at
// targetIndex is the attach BTF id. With GlobalSubprog a global main
// function of the same prototype comes first.
func targetBTF(t *guestapi.TargetProg, name string) ([]byte, []uint32, error) {
	if err := checkTarget(t, name); err != nil {
		return nil, nil, err
	}
	ret := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	if t.Ret == "u32" {
		ret = &btf.Int{Name: "unsigned int", Size: 4}
	}
	skb := &btf.Struct{Name: "__sk_buff", Size: 0}
	proto := &btf.FuncProto{Return: ret, Params: []btf.FuncParam{{Name: "ctx", Type: &btf.Pointer{Target: skb}}}}
	fn := &btf.Func{Name: name, Type: proto, Linkage: btf.GlobalFunc}
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		return nil, nil, err
	}
	fns := []*btf.Func{fn}
	if t.GlobalSubprog {
		fns = []*btf.Func{{Name: mainName, Type: proto, Linkage: btf.GlobalFunc}, fn}
	}
	if t.TailCallSubprog {
		fns = append(fns, &btf.Func{Name: subprogName, Type: proto, Linkage: btf.StaticFunc})
	}
	var ids []uint32
	for _, f := range fns {
		id, err := b.Add(f)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, uint32(id))
	}
	raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: nativeOrder})
	if err != nil {
		return nil, nil, err
	}
	return raw, ids, nil
}

// targetInsns is the target program's body and the instruction offset
// (in 8-byte slots) of each function. Without a tail call the target
// returns 0; with one it calls bpf_tail_call(ctx, progArray, 0) first,
// itself or (TailCallSubprog) in a subprogram it calls with ctx. With
// GlobalSubprog a main function calls the target with ctx and returns
// its value.
func targetInsns(t *guestapi.TargetProg, progArrayFD int) (asm.Instructions, []uint32) {
	body := trivialProg()
	if t.TailCall {
		body = asm.Instructions{
			asm.LoadMapPtr(asm.R2, progArrayFD),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
	}
	var callee string
	switch {
	case t.GlobalSubprog:
		// main calls the target and returns what it returns.
		callee = "target"
	case t.TailCallSubprog:
		callee = subprogName
	default:
		return body, []uint32{0}
	}
	main := asm.Instructions{asm.Call.Label(callee)}
	if !t.GlobalSubprog {
		main = append(main, asm.Mov.Imm(asm.R0, 0))
	}
	main = append(main, asm.Return())
	body[0] = body[0].WithSymbol(callee)
	var off uint64
	for _, ins := range main {
		off += ins.Size() / asm.InstructionSize
	}
	return append(main, body...), []uint32{0, uint32(off)}
}

// funcInfo is the bpf_func_info records {insn_off, type_id} of a
// program's functions.
func funcInfo(insnOffs, typeIDs []uint32) ([]byte, error) {
	if len(insnOffs) != len(typeIDs) || len(insnOffs) == 0 {
		return nil, fmt.Errorf("func_info: %d functions, %d BTF ids", len(insnOffs), len(typeIDs))
	}
	b := make([]byte, 8*len(insnOffs))
	for i := range insnOffs {
		binary.NativeEndian.PutUint32(b[8*i:], insnOffs[i])
		binary.NativeEndian.PutUint32(b[8*i+4:], typeIDs[i])
	}
	return b, nil
}

// progTrampKey is bpf_trampoline_compute_key for a BPF-program target:
// the target program's id in the high half, the BTF id in the low half.
func progTrampKey(progID, btfID uint32) uint64 { return uint64(progID)<<32 | uint64(btfID) }

// calleeInsns is the body of the program a taken tail call jumps to.
func calleeInsns() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, trampoline.TailCalleeRet), asm.Return()}
}

// extInsns is the body of a freplace program on a BPF-program target: it
// returns 0 (an extension runs with the target's program type, so the
// tracing helpers of the observers are not available to it).
func extInsns() asm.Instructions { return trivialProg() }
