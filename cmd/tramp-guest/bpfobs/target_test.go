package bpfobs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestTargetProgCheck(t *testing.T) {
	good := &TargetProg{Args: []string{"ptr"}, Ret: "s32"}
	if err := good.check("tc_entry"); err != nil {
		t.Fatalf("(ptr) -> s32: %v", err)
	}
	if err := (&TargetProg{Args: []string{"ptr"}, Ret: "u32", TailCall: true}).check("f1"); err != nil {
		t.Fatalf("(ptr) -> u32: %v", err)
	}
	bad := []struct {
		name string
		tp   *TargetProg
		want string
	}{
		{"f", nil, "no target program"},
		{"", good, "not a C identifier"},
		{"1f", good, "not a C identifier"},
		{"f-g", good, "not a C identifier"},
		{strings.Repeat("a", 128), good, "not a C identifier"},
		{"f", &TargetProg{Ret: "s32"}, "() -> s32"},
		{"f", &TargetProg{Args: []string{"ptr", "u64"}, Ret: "s32"}, "(ptr, u64) -> s32"},
		{"f", &TargetProg{Args: []string{"u64"}, Ret: "s32"}, "(u64) -> s32"},
		{"f", &TargetProg{Args: []string{"ptr"}, Ret: "u64"}, "(ptr) -> u64"},
		{"f", &TargetProg{Args: []string{"ptr"}, Ret: "void"}, "(ptr) -> void"},
	}
	for _, b := range bad {
		err := b.tp.check(b.name)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("check(%q, %+v) = %v, want an error with %q", b.name, b.tp, err, b.want)
		}
		if _, _, err := b.tp.targetBTF(b.name); err == nil {
			t.Errorf("targetBTF(%q, %+v) built BTF for a target the guest refuses", b.name, b.tp)
		}
	}
}

// TestTargetBTF reads the blob back: one global FUNC with the case's
// name, at the id the guest passes as attach_btf_id and in func_info.
func TestTargetBTF(t *testing.T) {
	for _, ret := range []string{"s32", "u32"} {
		raw, id, err := (&TargetProg{Args: []string{"ptr"}, Ret: ret}).targetBTF("tc_entry")
		if err != nil {
			t.Fatal(err)
		}
		if id == 0 {
			t.Fatal("FUNC id 0")
		}
		if !bytes.HasPrefix(raw, []byte{0x9f, 0xeb}) {
			t.Fatalf("blob starts % x, not the little-endian BTF magic", raw[:2])
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		typ, err := spec.TypeByID(btf.TypeID(id))
		if err != nil {
			t.Fatal(err)
		}
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

func TestTargetInsns(t *testing.T) {
	const mapFD = 9
	b, err := marshalInsns(targetInsns(false, -1))
	if err != nil {
		t.Fatal(err)
	}
	if raw := decodeRaw(t, b); len(raw) != 2 || raw[0].op != 0xb7 || raw[0].imm != 0 || raw[1].op != 0x95 {
		t.Errorf("plain target = %+v, want r0 = 0; exit", raw)
	}
	b, err = marshalInsns(targetInsns(true, mapFD))
	if err != nil {
		t.Fatal(err)
	}
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
}

func TestFuncInfoAndKey(t *testing.T) {
	fi := funcInfo(5)
	if len(fi) != 8 || binary.LittleEndian.Uint32(fi) != 0 || binary.LittleEndian.Uint32(fi[4:]) != 5 {
		t.Errorf("funcInfo(5) = % x, want insn_off 0, type_id 5", fi)
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
