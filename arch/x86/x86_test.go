package x86

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

func planOf(t *testing.T, profile, src string) *trampoline.Plan {
	t.Helper()
	c, err := cases.Parse("t.tramp", []byte(src))
	require.NoError(t, err)
	p, _ := trampoline.LookupProfile(profile)
	a, _ := trampoline.LookupArch("x86_64")
	res, err := cases.Replay(c, p, a, nil)
	require.NoError(t, err)
	if !res.Final.HasImage() {
		t.Fatal("no image")
	}
	return res.Final.Plan()
}

// Code lengths that the facts sheet (shared/reference) reports from live
// 7.2.13 images whose scenario it states exactly. Byte-exact comparison
// against our own recordings lives in the record tests.
func TestLiveCodeLengths(t *testing.T) {
	tests := []struct {
		name, src string
		want      int
	}{
		{"fsession cookie", "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n", 266},
		{"fsession cookie ip", "target bpf_fentry_test1\nprog s fsession cookie ip\nattach s\n", 277},
		{"fsession+fmod_ret", "target bpf_modify_return_test\nprog s fsession cookie\nprog m fmod_ret\nattach m\nattach s\n", 379},
	}
	for _, tc := range tests {
		p := planOf(t, "debian-7.2.13", tc.src)
		im, err := Generate(p, Debian, PlaceholderAddrs(p))
		require.NoError(t, err)
		if len(im.Code) != tc.want {
			t.Errorf("%s: %d bytes, live kernel had %d", tc.name, len(im.Code), tc.want)
		}
	}
}

func TestCheckerCatchesBrokenImages(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog s fsession cookie\nprog m fmod_ret\nattach m\nattach s\n")
	addrs := PlaceholderAddrs(p)
	good, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	mutate := func(f func(im *arch.Image)) *arch.Image {
		c := *good
		c.Code = append([]byte(nil), good.Code...)
		c.Relocs = append([]arch.Reloc(nil), good.Relocs...)
		f(&c)
		return &c
	}
	je := -1
	for i := 0; i+1 < len(good.Code); i++ {
		if good.Code[i] == 0x74 && good.Code[i-3] == 0x48 && good.Code[i-2] == 0x85 && good.Code[i-1] == 0xc0 {
			je = i
			break
		}
	}
	if je < 0 {
		t.Fatal("no je in image")
	}
	broken := map[string]*arch.Image{
		"truncated":           mutate(func(im *arch.Image) { im.Code = im.Code[:len(im.Code)-1] }),
		"je into instruction": mutate(func(im *arch.Image) { im.Code[je+1]++ }),
		"call without reloc": mutate(func(im *arch.Image) {
			for i, r := range im.Relocs {
				if r.Kind == arch.RelCall32 {
					im.Relocs = append(im.Relocs[:i:i], im.Relocs[i+1:]...)
					return
				}
			}
		}),
		"no int3": mutate(func(im *arch.Image) { im.Code[len(im.Code)-1] = 0x90 }),
	}
	if err := Check(good, addrs.Image, Features{SLS: true}); err != nil {
		t.Fatalf("good image: %v", err)
	}
	for name, im := range broken {
		if err := Check(im, addrs.Image, Features{SLS: true}); err == nil {
			t.Errorf("%s: checker passed it", name)
		}
	}
}

func TestDecodeEndbr(t *testing.T) {
	insns, err := Decode([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x40, 0xd6, 0xe9, 0, 0, 0, 0}, 0x1000)
	require.NoError(t, err)
	if len(insns) != 3 || insns[0].Op != "ENDBR64" || insns[1].Op != "ENDBR_POISON" || !insns[2].Branch || insns[2].Target != 0x100d {
		t.Fatalf("%+v", insns)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x55, 0x48, 0x89, 0xe5, 0xc3, 0xcc})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0xe8, 1, 2, 3, 4})
	f.Add([]byte{0x0f, 0x85, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x40, 0xd6, 0x48, 0x89, 0x45, 0xe8})
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, _ := Decode(b, 0xffffffffa0000000)
		total := 0
		for _, in := range insns {
			if in.Off != total || in.Len <= 0 {
				t.Fatalf("bad tiling at %d: %+v", total, in)
			}
			total += in.Len
		}
		_ = Check(&arch.Image{Code: b}, 0xffffffffa0000000, Features{SLS: true})
		_, _ = Explain(&arch.Image{Code: b}, 0xffffffffa0000000)
	})
}

// TAIL_CALL_CTX: "push rax" right after the sub leaves the tail-call
// counter pointer below the frame, the listing names that slot, and the
// reload before the original call reads it back with a disp32 (the
// bytes Debian 7.2.13 and 7.3.4 produced for tailcall_fentry_fexit).
func TestTailCallCntPtrSlot(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target tc(ptr) -> s32 bpf-prog tail-call\nprog e fentry\nprog x fexit\nattach e\nattach x\n")
	im, err := Generate(p, Debian, PlaceholderAddrs(p))
	require.NoError(t, err)
	f := layout(p)
	if f.StackSize != 48 || f.TailCallCntPtrOff != 56 {
		t.Fatalf("stack %d, tail-call counter pointer at rbp-%d; want 48 and 56", f.StackSize, f.TailCallCntPtrOff)
	}
	var slot *arch.Slot
	for i := range im.Frame {
		if im.Frame[i].Name == "tail_call_cnt_ptr" {
			slot = &im.Frame[i]
		}
	}
	if slot == nil || slot.Off != -56 || slot.Size != 8 {
		t.Errorf("frame slot %+v, want tail_call_cnt_ptr at -56", slot)
	}
	if got := im.Code[:9]; string(got) != "\x55\x48\x89\xe5\x48\x83\xec\x30\x50" {
		t.Errorf("prologue % x, want push rbp; mov rbp, rsp; sub rsp, 0x30; push rax", got)
	}
	reload := []byte{0x48, 0x8b, 0x85, 0xc8, 0xff, 0xff, 0xff} // mov rax, [rbp-0x38]
	if n := countSub(im.Code, reload); n != 1 {
		t.Errorf("%d reloads of the counter pointer, want 1 (before the original call)", n)
	}
	p = planOf(t, "debian-7.2.13", "target tc(ptr) -> s32 bpf-prog\nprog e fentry\nattach e\n")
	if f := layout(p); f.TailCallCntPtrOff != 0 {
		t.Errorf("without TAIL_CALL_CTX the counter pointer is at rbp-%d", f.TailCallCntPtrOff)
	}
}

func countSub(b, sub []byte) int {
	n := 0
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			n++
		}
	}
	return n
}
