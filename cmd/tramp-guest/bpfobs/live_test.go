package bpfobs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/guestapi"
)

// fakeMem is kernel memory made of a few regions.
type fakeMem map[uint64][]byte

func (m fakeMem) read(addr uint64, n int) ([]byte, error) {
	for base, b := range m {
		if addr >= base && addr-base < uint64(len(b)) {
			off := int(addr - base)
			end := min(off+n, len(b))
			return b[off:end], nil
		}
	}
	return nil, fmt.Errorf("no memory at %#x", addr)
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// blTo encodes "bl dst" at pc.
func blTo(pc, dst uint64) uint32 {
	return 0x94000000 | uint32((int64(dst)-int64(pc))/4)&0x03ffffff
}

func TestPLTLiteral(t *testing.T) {
	const at = 0xffff800081cd0100
	// ldr x10, #8; br x10
	if lit, ok := pltLiteral(at, words(0x5800004a, 0xd61f0140)); !ok || lit != at+8 {
		t.Errorf("ldr x10, #8; br x10: %#x %v", lit, ok)
	}
	// a negative literal offset (-4 words)
	if lit, ok := pltLiteral(at, words(0x58ffff90, 0xd61f0200)); !ok || lit != at-16 {
		t.Errorf("ldr x16, #-16; br x16: %#x %v", lit, ok)
	}
	for _, b := range [][]byte{
		words(0x5800004a, 0xd61f0200), // br to another register
		words(0xa9bf7bfd, 0x910003fd), // stp; mov: an image's start
		words(0x5800004a, 0xd63f0140), // blr, not br
	} {
		if _, ok := pltLiteral(at, b); ok {
			t.Errorf("% x taken for a PLT", b)
		}
	}
}

func TestFollowX86(t *testing.T) {
	k := liveKernel{mem: fakeMem{}, directCallOff: -1}
	for _, c := range []struct {
		cs   guestapi.CallSite
		want uint64
		via  string
		err  string
	}{
		{guestapi.CallSite{Kind: "call", Offset: 4, Target: 0xffffffffc0000c40}, 0xffffffffc0000c40, "call", ""},
		{guestapi.CallSite{Kind: "jmp", Offset: 4, Target: 0xffffffffc0002700}, 0xffffffffc0002700, "jmp", ""},
		{guestapi.CallSite{Kind: "nop", Offset: 4, Target: 0}, 0, "", "nop"},
		{guestapi.CallSite{Kind: "unknown", Offset: 0, Target: 0}, 0, "", "not a patched call"},
	} {
		got, via, err := k.follow("amd64", 0xffffffff83e7f890, c.cs)
		if got != c.want || via != c.via || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %#x %q %v, want %#x %q %q", c.cs, got, via, err, c.want, c.via, c.err)
		}
	}
}

func TestFollowARM64(t *testing.T) {
	const (
		fn       = 0xffff800080e94c88 // a traced function, 8-aligned
		site     = fn + 4             // the bl after mov x9, x30
		caller   = 0xffff800080031000 // ftrace_caller
		prog     = 0xffff800081cd0000 // a BPF program with its PLT at +0x200
		plt      = prog + 0x200
		image    = 0xffff7fff80001000 // the live image
		oldImage = 0xffff7fff80003000
		ops      = 0xffff0000c1234500 // the trampoline's ftrace_ops
		dcOff    = 0x98               // direct_call in it
	)
	mem := fakeMem{
		image:  words(0xd503245f, 0xa9bf7bfd), // bti c; stp: not a PLT
		plt:    append(words(0x5800004a, 0xd61f0140), le64(image)...),
		fn - 8: append(le64(ops), words(0xaa1e03e9, blTo(site, caller))...),
		ops:    append(make([]byte, dcOff), le64(image)...),
	}
	k := liveKernel{mem: mem, ftraceCaller: caller, directCallOff: dcOff}
	check := func(name string, fn uint64, cs guestapi.CallSite, want uint64, via string) {
		t.Helper()
		got, gotVia, err := k.follow("arm64", fn, cs)
		if err != nil || got != want || gotVia != via {
			t.Errorf("%s: %#x %q %v, want %#x %q", name, got, gotVia, err, uint64(want), via)
		}
	}
	check("bl in range", fn, guestapi.CallSite{Kind: "bl", Offset: 4, Target: image}, image, "bl")
	check("bl to the PLT", prog, guestapi.CallSite{Kind: "bl", Offset: 4, Target: plt}, image, "bl plt")
	check("ftrace_caller", fn, guestapi.CallSite{Kind: "bl", Offset: 4, Target: caller}, image, "bl ftrace_caller, ops.direct_call")
	// With bti c the bl is at +8; the literal is still at fn-8.
	check("ftrace_caller after bti", fn, guestapi.CallSite{Kind: "bl", Offset: 8, Target: caller}, image, "bl ftrace_caller, ops.direct_call")

	// The ops pointer moved to another ops whose direct_call is the old
	// image: follow reads what is there now, no cached answer.
	mem[ops] = append(make([]byte, dcOff), le64(oldImage)...)
	check("ops updated", fn, guestapi.CallSite{Kind: "bl", Offset: 4, Target: caller}, oldImage, "bl ftrace_caller, ops.direct_call")

	for _, c := range []struct {
		name string
		k    liveKernel
		err  string
	}{
		{"no direct_call offset", liveKernel{mem: mem, ftraceCaller: caller, directCallOff: -1}, "no ftrace_ops.direct_call"},
		{"list ops", liveKernel{mem: fakeMem{fn - 8: le64(ops), ops: make([]byte, 256)}, ftraceCaller: caller, directCallOff: dcOff}, "no direct_call"},
		{"no literal", liveKernel{mem: fakeMem{}, ftraceCaller: caller, directCallOff: dcOff}, "literal"},
	} {
		if _, _, err := c.k.follow("arm64", fn, guestapi.CallSite{Kind: "bl", Offset: 4, Target: caller}); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
		}
	}
	if _, _, err := k.follow("arm64", fn, guestapi.CallSite{Kind: "nop", Offset: 4, Target: 0}); err == nil {
		t.Error("nop site followed")
	}
}

func TestMemberOffset(t *testing.T) {
	u64 := &btf.Int{Name: "long unsigned int", Size: 8}
	ops := &btf.Struct{Name: "ftrace_ops", Size: 24, Members: []btf.Member{
		{Name: "func", Type: u64, Offset: 0},
		{Name: "next", Type: u64, Offset: 64},
		{Name: "direct_call", Type: u64, Offset: 128},
	}}
	b, err := btf.NewBuilder(nil, nil)
	require.NoError(t, err)
	if _, err := b.Add(ops); err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: binary.LittleEndian})
	require.NoError(t, err)
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	if got := memberOffset(spec, "ftrace_ops", "direct_call"); got != 16 {
		t.Errorf("direct_call at %d, want 16", got)
	}
	if got := memberOffset(spec, "ftrace_ops", "missing"); got != -1 {
		t.Errorf("missing member at %d", got)
	}
	if got := memberOffset(spec, "no_such_struct", "x"); got != -1 {
		t.Errorf("missing struct: %d", got)
	}
	if got := memberOffset(nil, "ftrace_ops", "direct_call"); got != -1 {
		t.Errorf("nil spec: %d", got)
	}
}

func TestPickImage(t *testing.T) {
	const newer, older = 0xffff800083a00000, 0xffff800083a00680
	for _, c := range []struct {
		name     string
		live     uint64
		kallsyms bool
		cands    []uint64
		want     uint64
		from     string
		err      error
	}{
		{"call site, no kallsyms", newer, false, nil, newer, "call_site", nil},
		{"nothing", 0, false, nil, 0, "", errors.New("")},
		// The flake: the superseded image is still listed, above the live
		// one. The call site decides, not the address order.
		{"call site among two", newer, true, []uint64{newer, older}, newer, "call_site", nil},
		{"call site among two, other order", newer, true, []uint64{older, newer}, newer, "call_site", nil},
		{"call site elsewhere", 0xffff800080031000, true, []uint64{newer, older}, 0, "", errors.New("")},
		{"call site, no ksym", newer, true, nil, 0, "", errors.New("")},
		{"only one", 0, true, []uint64{older}, older, "kallsyms", nil},
		{"two, no call site", 0, true, []uint64{newer, older}, 0, "", errSeveralImages},
		{"none", 0, true, nil, 0, "", errors.New("")},
	} {
		got, from, err := pickImage(c.live, c.kallsyms, c.cands)
		if got != c.want || from != c.from || (err == nil) != (c.err == nil) || c.err == errSeveralImages && err != errSeveralImages {
			t.Errorf("%s: %#x %q %v, want %#x %q %v", c.name, got, from, err, c.want, c.from, c.err)
		}
	}
}

// fakeClock is a clock that sleeping and reading kallsyms advance.
type fakeClock struct{ now time.Time }

func (c *fakeClock) settle(timeout time.Duration) settle {
	return settle{timeout: timeout, interval: 200 * time.Millisecond,
		now: func() time.Time { return c.now }, sleep: func(d time.Duration) { c.now = c.now.Add(d) }}
}

// kallsymsSeq returns the [bpf] symbols of successive kallsyms texts (the
// last one repeats), parsed like /proc/kallsyms; each read takes a
// second, as under TCG.
func kallsymsSeq(t *testing.T, c *fakeClock, texts ...string) (func() ([]guestapi.Sym, error), *int) {
	n := 0
	return func() ([]guestapi.Sym, error) {
		s := texts[min(n, len(texts)-1)]
		n++
		c.now = c.now.Add(time.Second)
		syms, err := readBPFSyms(strings.NewReader(s))
		require.NoError(t, err)
		return syms, nil
	}, &n
}

const (
	twoImages = `ffff800083a00680 t bpf_trampoline_17179869185	[bpf]
ffff800083a00000 t bpf_trampoline_17179869185	[bpf]
ffff800083a00400 t bpf_prog_1234567890abcdef_x	[bpf]
ffff800083a01000 t bpf_trampoline_6442450945	[bpf]
`
	oneImage = `ffff800083a00000 t bpf_trampoline_17179869185	[bpf]
ffff800083a00400 t bpf_prog_1234567890abcdef_x	[bpf]
ffff800083a01000 t bpf_trampoline_6442450945	[bpf]
`
	name = "bpf_trampoline_17179869185"
)

// TestReadBPFSymsDuplicates: both ksyms of one key are kept, sorted by
// address, next to the other trampolines'.
func TestReadBPFSymsDuplicates(t *testing.T) {
	syms, err := readBPFSyms(strings.NewReader(twoImages))
	require.NoError(t, err)
	var got []string
	for _, s := range syms {
		got = append(got, fmt.Sprintf("%x %s", s.Addr, s.Name))
	}
	want := []string{"ffff800083a00000 " + name, "ffff800083a00400 bpf_prog_1234567890abcdef_x", "ffff800083a00680 " + name, "ffff800083a01000 bpf_trampoline_6442450945"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChooseImage(t *testing.T) {
	// The call site picks the lower of two at once: no waiting.
	c := &fakeClock{}
	read, n := kallsymsSeq(t, c, twoImages)
	ch, err := chooseImage(name, 0xffff800083a00000, nil, read, c.settle(time.Second))
	if err != nil || ch.Addr != 0xffff800083a00000 || ch.From != "call_site" || *n != 1 || len(ch.Cands) != 2 || ch.Waited != 0 {
		t.Errorf("call site: %+v %v after %d reads", ch, err, *n)
	}
	// No call site: wait until the superseded image is gone.
	read, n = kallsymsSeq(t, c, twoImages, twoImages, oneImage)
	ch, err = chooseImage(name, 0, errors.New("unresolved"), read, c.settle(5*time.Second))
	if err != nil || ch.Addr != 0xffff800083a00000 || ch.From != "kallsyms_settled" || *n != 3 || ch.Waited != 2400*time.Millisecond {
		t.Errorf("settled: %+v %v after %d reads", ch, err, *n)
	}
	// It never settles: an error naming both, no image.
	read, n = kallsymsSeq(t, c, twoImages)
	ch, err = chooseImage(name, 0, errors.New("unresolved"), read, c.settle(3*time.Second))
	if err == nil || ch.Addr != 0 || !strings.Contains(err.Error(), "0xffff800083a00000 0xffff800083a00680") || !strings.Contains(err.Error(), "unresolved") {
		t.Errorf("unsettled: %+v %v", ch, err)
	}
	if *n != 4 || ch.Waited != 3600*time.Millisecond {
		t.Errorf("unsettled: %d reads, waited %v; want 4 reads (1.2s each after the first) and 3.6s", *n, ch.Waited)
	}
	// The call site leads to neither: an error at once.
	read, n = kallsymsSeq(t, c, twoImages)
	if ch, err := chooseImage(name, 0xffff800083a01000, nil, read, c.settle(time.Second)); err == nil || ch.Addr != 0 || *n != 1 {
		t.Errorf("elsewhere: %+v %v", ch, err)
	}
	// A read error is returned.
	if _, err := chooseImage(name, 0, nil, func() ([]guestapi.Sym, error) { return nil, errors.New("EPERM") }, c.settle(time.Second)); err == nil || err.Error() != "EPERM" {
		t.Errorf("read error: %v", err)
	}
}

// riscv64: a kernel function's auipc+jalr reaches ftrace_caller, whose
// ops literal is the 8 bytes before the function; a BPF program's poked
// entry goes to the image itself.
func TestFollowRISCV64(t *testing.T) {
	const (
		fn     = 0xffffffff80bbb560 // bpf_fentry_test1, 7.2.13 nokaslr
		caller = 0xffffffff800229e8 // ftrace_caller
		image  = 0xffffffff780004c0
		ops    = 0xffffaf8003b38000
		dcOff  = 0x98
	)
	mem := fakeMem{fn - 8: le64(ops), ops: append(make([]byte, dcOff), le64(image)...)}
	k := liveKernel{mem: mem, ftraceCaller: caller, directCallOff: dcOff}
	got, via, err := k.follow("riscv64", fn, guestapi.CallSite{Kind: "auipc+jalr", Offset: 4, Target: caller})
	if err != nil || got != image || via != "auipc+jalr ftrace_caller, ops.direct_call" {
		t.Errorf("ftrace_caller: %#x %q %v", got, via, err)
	}
	prog := uint64(0xffffffff78000098)
	got, via, err = k.follow("riscv64", prog, guestapi.CallSite{Kind: "auipc+jalr", Offset: 4, Target: prog + 0x468})
	if err != nil || got != prog+0x468 || via != "auipc+jalr" {
		t.Errorf("BPF program: %#x %q %v", got, via, err)
	}
	if _, _, err := (liveKernel{mem: fakeMem{}, ftraceCaller: caller, directCallOff: dcOff}).follow("riscv64", fn, guestapi.CallSite{Kind: "auipc+jalr", Offset: 4, Target: caller}); err == nil || !strings.Contains(err.Error(), "literal") {
		t.Errorf("no literal: %v", err)
	}
	if _, _, err := k.follow("arm64", fn, guestapi.CallSite{Kind: "auipc+jalr", Offset: 4, Target: caller}); err == nil {
		t.Error("an auipc+jalr site followed on arm64")
	}
}
