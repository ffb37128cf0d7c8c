package bpfobs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
)

func TestTargetProgCheck(t *testing.T) {
	good := &guestapi.TargetProg{Args: []string{"ptr"}, Ret: "s32"}
	if err := checkTarget(good, "tc_entry"); err != nil {
		t.Fatalf("(ptr) -> s32: %v", err)
	}
	if err := checkTarget(&guestapi.TargetProg{Args: []string{"ptr"}, Ret: "u32", TailCall: true}, "f1"); err != nil {
		t.Fatalf("(ptr) -> u32: %v", err)
	}
	bad := []struct {
		name string
		tp   *guestapi.TargetProg
		want string
	}{
		{"f", nil, "no target program"},
		{"", good, "not a C identifier"},
		{"1f", good, "not a C identifier"},
		{"f-g", good, "not a C identifier"},
		{strings.Repeat("a", 128), good, "not a C identifier"},
		{"f", &guestapi.TargetProg{Ret: "s32"}, "() -> s32"},
		{"f", &guestapi.TargetProg{Args: []string{"ptr", "u64"}, Ret: "s32"}, "(ptr, u64) -> s32"},
		{"f", &guestapi.TargetProg{Args: []string{"u64"}, Ret: "s32"}, "(u64) -> s32"},
		{"f", &guestapi.TargetProg{Args: []string{"ptr"}, Ret: "u64"}, "(ptr) -> u64"},
		{"f", &guestapi.TargetProg{Args: []string{"ptr"}, Ret: "void"}, "(ptr) -> void"},
		{"tramp_main", good, "the guest's own function"},
		{"tramp_tail", good, "the guest's own function"},
		{"f", &guestapi.TargetProg{TailCall: true, TailCallSubprog: true, GlobalSubprog: true, Args: []string{"ptr"}, Ret: "s32"}, "makes its tail call itself"},
	}
	for _, b := range bad {
		err := checkTarget(b.tp, b.name)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("check(%q, %+v) = %v, want an error with %q", b.name, b.tp, err, b.want)
		}
		if _, _, err := targetBTF(b.tp, b.name); err == nil {
			t.Errorf("targetBTF(%q, %+v) built BTF for a target the guest refuses", b.name, b.tp)
		}
	}
}

// TestTargetBTF reads the blob back: one global FUNC with the case's
// name, at the id the guest passes as attach_btf_id and in func_info.
func TestTargetBTF(t *testing.T) {
	for _, ret := range []string{"s32", "u32"} {
		raw, ids, err := targetBTF(&guestapi.TargetProg{Args: []string{"ptr"}, Ret: ret}, "tc_entry")
		require.NoError(t, err)
		if len(ids) != 1 || ids[0] == 0 {
			t.Fatalf("FUNC ids %v, want one", ids)
		}
		id := ids[0]
		if !bytes.HasPrefix(raw, []byte{0x9f, 0xeb}) {
			t.Fatalf("blob starts % x, not the little-endian BTF magic", raw[:2])
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		require.NoError(t, err)
		typ, err := spec.TypeByID(btf.TypeID(id))
		require.NoError(t, err)
		fn, ok := typ.(*btf.Func)
		if !ok {
			t.Fatalf("type %d is %T, want *btf.Func", id, typ)
		}
		if fn.Name != "tc_entry" || fn.Linkage != btf.GlobalFunc {
			t.Errorf("func %q linkage %v, want tc_entry global", fn.Name, fn.Linkage)
		}
		proto := fn.Type.(*btf.FuncProto)
		if len(proto.Params) != 1 {
			t.Fatalf("%d params", len(proto.Params))
		}
		p, ok := proto.Params[0].Type.(*btf.Pointer)
		if !ok {
			t.Fatalf("param is %T, want a pointer", proto.Params[0].Type)
		}
		if s, ok := p.Target.(*btf.Struct); !ok || s.Name != "__sk_buff" {
			t.Errorf("param points to %v, want struct __sk_buff", p.Target)
		}
		r, ok := proto.Return.(*btf.Int)
		if !ok || r.Size != 4 || (r.Encoding == btf.Signed) != (ret == "s32") {
			t.Errorf("%s: return type %v", ret, proto.Return)
		}
	}
}

// The subprogram variant: a global FUNC and a static one, in program
// order, both readable back.
func TestTargetBTFSubprog(t *testing.T) {
	raw, ids, err := targetBTF(&guestapi.TargetProg{TailCall: true, TailCallSubprog: true, Args: []string{"ptr"}, Ret: "s32"}, "tc_entry")
	require.NoError(t, err)
	if len(ids) != 2 {
		t.Fatalf("FUNC ids %v, want two", ids)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	for i, want := range []struct {
		name    string
		linkage btf.FuncLinkage
	}{{"tc_entry", btf.GlobalFunc}, {subprogName, btf.StaticFunc}} {
		typ, err := spec.TypeByID(btf.TypeID(ids[i]))
		require.NoError(t, err)
		if fn, ok := typ.(*btf.Func); !ok || fn.Name != want.name || fn.Linkage != want.linkage {
			t.Errorf("func %d is %v, want %s with linkage %v", i, typ, want.name, want.linkage)
		}
	}
}

func TestTargetInsns(t *testing.T) {
	const mapFD = 9
	in, offs := targetInsns(&guestapi.TargetProg{}, -1)
	b, err := marshalInsns(in)
	require.NoError(t, err)
	if raw := decodeRaw(t, b); len(raw) != 2 || raw[0].op != 0xb7 || raw[0].imm != 0 || raw[1].op != 0x95 || len(offs) != 1 || offs[0] != 0 {
		t.Errorf("plain target = %+v at %v, want r0 = 0; exit at 0", raw, offs)
	}
	in, offs = targetInsns(&guestapi.TargetProg{TailCall: true}, mapFD)
	if len(offs) != 1 || offs[0] != 0 {
		t.Errorf("functions at %v, want [0]", offs)
	}
	b, err = marshalInsns(in)
	require.NoError(t, err)
	raw := decodeRaw(t, b)
	var tailCalls, mapLoads int
	for i, r := range raw {
		switch {
		case r.op == 0x18 && r.src == 1: // ld_imm64 BPF_PSEUDO_MAP_FD
			mapLoads++
			if r.imm != mapFD || r.dst != 2 {
				t.Errorf("map load r%d imm %d, want r2 = map fd %d", r.dst, r.imm, mapFD)
			}
		case r.op == 0x85 && r.src == 0 && r.imm == 12: // bpf_tail_call
			tailCalls++
			if i < 2 || raw[i-1].op != 0xb7 || raw[i-1].dst != 3 || raw[i-1].imm != 0 {
				t.Errorf("bpf_tail_call without r3 = 0 (index) before it")
			}
		}
	}
	if tailCalls != 1 || mapLoads != 1 {
		t.Errorf("%d tail calls, %d map loads, want 1 and 1", tailCalls, mapLoads)
	}
	if last := raw[len(raw)-1]; last.op != 0x95 {
		t.Errorf("last insn %+v, want exit", last)
	}

	// Through a subprogram: main calls it (BPF_PSEUDO_CALL, imm = the
	// distance to the second function), the second function tail-calls.
	in, offs = targetInsns(&guestapi.TargetProg{TailCall: true, TailCallSubprog: true}, mapFD)
	b, err = marshalInsns(in)
	require.NoError(t, err)
	raw = decodeRaw(t, b)
	if len(offs) != 2 || offs[0] != 0 || offs[1] == 0 || int(offs[1]) >= len(raw) {
		t.Fatalf("functions at %v in %d slots", offs, len(raw))
	}
	if c := raw[0]; c.op != 0x85 || c.src != 1 || int(c.imm) != int(offs[1])-1 {
		t.Errorf("first insn %+v, want a pseudo call to slot %d", c, offs[1])
	}
	for i, r := range raw {
		if r.op == 0x85 && r.src == 0 && r.imm == 12 && i < int(offs[1]) {
			t.Errorf("tail call at slot %d, in the main function", i)
		}
	}
	if r := raw[offs[1]]; r.op != 0x18 || r.src != 1 || r.imm != mapFD {
		t.Errorf("subprogram starts with %+v, want the program array load", r)
	}
	if r := raw[offs[1]-1]; r.op != 0x95 {
		t.Errorf("main function ends with %+v, want exit", r)
	}
	if err := checkTarget(&guestapi.TargetProg{TailCallSubprog: true, Args: []string{"ptr"}, Ret: "s32"}, "f"); err == nil {
		t.Error("a subprogram tail call without TailCall passed the check")
	}
	if err := checkTarget(&guestapi.TargetProg{TailCallTaken: true, Args: []string{"ptr"}, Ret: "s32"}, "f"); err == nil {
		t.Error("a taken tail call without TailCall passed the check")
	}
	b, err = marshalInsns(calleeInsns())
	require.NoError(t, err)
	if raw := decodeRaw(t, b); len(raw) != 2 || raw[0].op != 0xb7 || raw[0].imm != trampoline.TailCalleeRet || raw[1].op != 0x95 {
		t.Errorf("callee = %+v, want r0 = %#x; exit", raw, trampoline.TailCalleeRet)
	}
}

func TestFuncInfoAndKey(t *testing.T) {
	fi, err := funcInfo([]uint32{0, 3}, []uint32{5, 6})
	require.NoError(t, err)
	if len(fi) != 16 || binary.LittleEndian.Uint32(fi) != 0 || binary.LittleEndian.Uint32(fi[4:]) != 5 ||
		binary.LittleEndian.Uint32(fi[8:]) != 3 || binary.LittleEndian.Uint32(fi[12:]) != 6 {
		t.Errorf("funcInfo = % x, want {0, 5} {3, 6}", fi)
	}
	for _, bad := range [][2][]uint32{{nil, nil}, {{0}, {5, 6}}} {
		if _, err := funcInfo(bad[0], bad[1]); err == nil {
			t.Errorf("funcInfo(%v, %v) passed", bad[0], bad[1])
		}
	}
	// Debian 7.2.13 x86_64 (cases/testdata/.../tailcall_fentry_fexit.json):
	// program id 4, BTF id 1, kallsyms bpf_trampoline_17179869185.
	if k := progTrampKey(4, 1); k != 17179869185 {
		t.Errorf("progTrampKey(4, 1) = %d", k)
	}
	if k := progTrampKey(0xffffffff, 0xffffffff); k != 0xffffffffffffffff {
		t.Errorf("progTrampKey(max, max) = %#x", k)
	}
}

// A global-subprogram target: main (global) first, the target (global)
// second; main calls the target and returns its value, the target makes
// the tail call.
func TestTargetGlobalSubprog(t *testing.T) {
	const mapFD = 4
	tp := &guestapi.TargetProg{TailCall: true, GlobalSubprog: true, Args: []string{"ptr"}, Ret: "s32"}
	if targetIndex(tp) != 1 || targetIndex(&guestapi.TargetProg{}) != 0 {
		t.Fatalf("target index %d", targetIndex(tp))
	}
	raw, ids, err := targetBTF(tp, "tc_sub")
	require.NoError(t, err)
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	if len(ids) != 2 {
		t.Fatalf("FUNC ids %v", ids)
	}
	for i, want := range []string{mainName, "tc_sub"} {
		typ, err := spec.TypeByID(btf.TypeID(ids[i]))
		require.NoError(t, err)
		if fn, ok := typ.(*btf.Func); !ok || fn.Name != want || fn.Linkage != btf.GlobalFunc {
			t.Errorf("func %d is %v, want global %s", i, typ, want)
		}
	}
	in, offs := targetInsns(tp, mapFD)
	b, err := marshalInsns(in)
	require.NoError(t, err)
	r := decodeRaw(t, b)
	if len(offs) != 2 || offs[1] != 2 {
		t.Fatalf("functions at %v, want [0 2]", offs)
	}
	// main: call the target, exit with its r0.
	if r[0].op != 0x85 || r[0].src != 1 || r[0].imm != 1 || r[1].op != 0x95 {
		t.Errorf("main = %+v %+v, want call +1; exit", r[0], r[1])
	}
	if r[2].op != 0x18 || r[2].src != 1 || r[2].imm != mapFD {
		t.Errorf("target starts with %+v, want the program array load", r[2])
	}
	// Without a tail call the subprogram returns 0.
	in, offs = targetInsns(&guestapi.TargetProg{GlobalSubprog: true}, -1)
	if b, err = marshalInsns(in); err != nil {
		t.Fatal(err)
	}
	if r := decodeRaw(t, b); len(r) != 4 || len(offs) != 2 || r[2].op != 0xb7 || r[3].op != 0x95 {
		t.Errorf("plain global subprogram = %+v at %v", r, offs)
	}
}

// Whatever a job asks for, the guest's target builder refuses it with an
// error or builds a program whose func_info matches its BTF: never a
// panic.
func FuzzTargetProg(f *testing.F) {
	f.Add("tc_entry", "ptr", "s32", uint8(1))
	f.Add("tc_sub", "ptr", "u32", uint8(0xf))
	f.Add("tramp_main", "ptr,u64", "void", uint8(0x8))
	f.Add("", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, name, args, ret string, flags uint8) {
		tp := &guestapi.TargetProg{TailCall: flags&1 != 0, TailCallSubprog: flags&2 != 0, TailCallTaken: flags&4 != 0, GlobalSubprog: flags&8 != 0, Ret: ret}
		if args != "" {
			tp.Args = strings.Split(args, ",")
		}
		raw, ids, err := targetBTF(tp, name)
		if err != nil {
			if checkTarget(tp, name) == nil {
				t.Fatalf("targetBTF failed on a target check accepts: %v", err)
			}
			return
		}
		in, offs := targetInsns(tp, 3)
		if len(offs) != len(ids) || targetIndex(tp) >= len(ids) {
			t.Fatalf("%d functions, %d BTF ids, target index %d", len(offs), len(ids), targetIndex(tp))
		}
		if _, err := funcInfo(offs, ids); err != nil {
			t.Fatal(err)
		}
		if _, err := marshalInsns(in); err != nil {
			t.Fatal(err)
		}
		if _, err := btf.LoadSpecFromReader(bytes.NewReader(raw)); err != nil {
			t.Fatalf("BTF does not read back: %v", err)
		}
	})
}
