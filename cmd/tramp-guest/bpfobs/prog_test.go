package bpfobs

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
)

type rawInsn struct {
	op       byte
	dst, src byte
	off      int16
	imm      int32
}

func decodeRaw(t *testing.T, b []byte) []rawInsn {
	t.Helper()
	if len(b)%8 != 0 {
		t.Fatalf("%d bytes is not a whole number of instructions", len(b))
	}
	var out []rawInsn
	for i := 0; i < len(b); i += 8 {
		out = append(out, rawInsn{
			op: b[i], dst: b[i+1] & 0xf, src: b[i+1] >> 4,
			off: int16(binary.LittleEndian.Uint16(b[i+2:])),
			imm: int32(binary.LittleEndian.Uint32(b[i+4:])),
		})
	}
	return out
}

func TestFetchAddEncoding(t *testing.T) {
	b, err := marshalInsns(asm.Instructions{fetchAddDW(asm.R0, asm.R1, 0)})
	require.NoError(t, err)
	// BPF_STX|BPF_DW|BPF_ATOMIC = 0xdb, dst r0, src r1, imm BPF_ADD|BPF_FETCH.
	want := []byte{0xdb, 0x10, 0, 0, 0x01, 0, 0, 0}
	if string(b) != string(want) {
		t.Fatalf("fetch-add = % x, want % x", b, want)
	}
}

func TestBuildObserver(t *testing.T) {
	const mapFD, isRet, cookie = 7, 70044, 70042
	kinds := []observerSpec{
		{Kind: "fentry"},
		{Kind: "fentry", IP: true, Frame: true},
		{Kind: "fexit", IP: true},
		{Kind: "fmod_ret", Returns: -22},
		{Kind: "fmod_ret", Returns: 1 << 40},
		{Kind: "fsession"},
		{Kind: "fsession", Cookie: true, IP: true, Frame: true},
		{Kind: "freplace"},
	}
	for i, s := range kinds {
		s.Index, s.MapFD, s.IsReturnID, s.CookieID, s.CookieValue = i, mapFD, isRet, cookie, trampoline.CookieValueFor(i)
		in, err := buildObserver(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		b, err := marshalInsns(in)
		if err != nil {
			t.Fatalf("%+v: marshal: %v", s, err)
		}
		raw := decodeRaw(t, b)
		var kfuncs []int32
		var mapLoads, helperArgs, fetchAdds int
		for j, r := range raw {
			switch {
			case r.op == 0x85 && r.src == 2: // call, BPF_PSEUDO_KFUNC_CALL
				kfuncs = append(kfuncs, r.imm)
			case r.op == 0x85 && r.src == 0 && r.imm == 183: // bpf_get_func_arg
				helperArgs++
			case r.op == 0x18 && r.src == 1: // ld_imm64 BPF_PSEUDO_MAP_FD
				if r.imm != mapFD {
					t.Errorf("map load imm %d", r.imm)
				}
				mapLoads++
			case r.op == 0xdb:
				if r.imm != 1 {
					t.Errorf("atomic at %d has imm %#x", j, r.imm)
				}
				fetchAdds++
			}
			// Jumps must stay inside the program.
			if r.op&7 == 5 && r.op != 0x85 && r.op != 0x95 {
				if tgt := j + 1 + int(r.off); tgt < 0 || tgt >= len(raw) {
					t.Errorf("%+v: jump at %d to %d out of range", s, j, tgt)
				}
			}
		}
		if mapLoads != 2 || fetchAdds != 1 || helperArgs != maxArgs {
			t.Errorf("%+v: %d map loads, %d fetch-adds, %d get_func_arg calls", s, mapLoads, fetchAdds, helperArgs)
		}
		wantK := 0
		if s.Kind == "fsession" {
			wantK = 1
			if s.Cookie {
				wantK = 2
			}
		}
		if len(kfuncs) != wantK {
			t.Errorf("%+v: kfunc calls %v", s, kfuncs)
		}
		if last := raw[len(raw)-1]; last.op != 0x95 {
			t.Errorf("%+v: last insn %#x is not exit", s, last.op)
		}
	}
	if _, err := buildObserver(observerSpec{Kind: "fsession", MapFD: 3}); err == nil {
		t.Error("fsession without bpf_session_is_return id accepted")
	}
	if _, err := buildObserver(observerSpec{Kind: "fsession", Cookie: true, MapFD: 3, IsReturnID: 1}); err == nil {
		t.Error("cookie without bpf_session_cookie id accepted")
	}
}

func TestAttachTypeOf(t *testing.T) {
	for kind, want := range map[string][2]uint32{
		"fentry": {26, 24}, "fexit": {26, 25}, "fmod_ret": {26, 26}, "fsession": {26, 58}, "freplace": {28, 0},
	} {
		pt, at, err := attachTypeOf(kind)
		if err != nil || pt != want[0] || at != want[1] {
			t.Errorf("%s: %d %d %v", kind, pt, at, err)
		}
	}
	if _, _, err := attachTypeOf("kprobe"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestObjName(t *testing.T) {
	n := objName("fs-a/very_long_program_name")
	if got := string(n[:15]); got != "fsavery_long_pr" || n[15] != 0 {
		t.Errorf("objName = %q", n)
	}
}
