package emu

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"golang.org/x/arch/s390x/s390xasm"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

var updateS390x = flag.Bool("update-s390x", false, "reassemble emu/testdata/s390x/*.s with GNU as and ld (binutils-s390x-linux-gnu) into their .bin files")

// The addresses the assembled s390x test images are linked with, shaped
// like a nokaslr s390x boot: the image and the programs' code in the
// modules area, kernel text above it, struct bpf_prog in vmalloc, im in
// the identity map.
const (
	s390Base  = 0x000003ff60040000
	s390Func  = 0x000003ffe0cb3a10
	s390Im    = 0x0000000005a1e400
	s390ProgE = 0x0000037fe0a6c000
	s390ProgX = 0x0000037fe0a6d000
	s390FuncE = 0x000003ff60001100
	s390FuncX = 0x000003ff60001900
)

// s390Symbols are the kernel symbols of the test images.
var s390Symbols = map[string]uint64{
	trampoline.HelperTrampEnter:     0x000003ffe03a2000,
	trampoline.HelperTrampExit:      0x000003ffe03a2100,
	trampoline.HelperProgEnterRecur: 0x000003ffe03a2200,
	trampoline.HelperProgExitRecur:  0x000003ffe03a2300,
	"__s390_indirect_jump_r1":       0x000003ffe0f00010,
	"__s390_indirect_jump_r8":       0x000003ffe0f00080,
	"__s390_indirect_jump_r14":      0x000003ffe0f000e0,
}

// s390Image is one assembled test image: a source in testdata/s390x and
// the .ifdef symbol it is assembled with ("" none).
type s390Image struct{ src, variant string }

func (i s390Image) bin() string {
	name := strings.TrimSuffix(i.src, ".s")
	if i.variant != "" {
		name += "-" + i.variant
	}
	return filepath.Join("testdata", "s390x", name+".bin")
}

// s390FrameVariants are frame.s's ways to break the trampoline.
var s390FrameVariants = []string{"SP_NOT_RESTORED", "NO_BACKCHAIN", "CALLER_WRITE", "MISALIGN_CALL", "CC_AFTER_CALL",
	"NO_STACK_ARG", "NO_TCC_IN", "WRONG_REF", "CLOBBER_R7", "NO_TCC_OUT"}

func s390Images() []s390Image {
	out := []s390Image{{"insns.s", ""}, {"unmodelled.s", ""}, {"frame.s", ""}, {"jg.s", ""}, {"br14.s", ""},
		{"br14.s", "EXPOLINE"}, {"origstack.s", ""}, {"origstack.s", "EXPOLINE"}}
	for _, v := range s390FrameVariants {
		out = append(out, s390Image{"frame.s", v})
	}
	return out
}

// assembleS390 assembles and links one test image with GNU as and ld:
// the immediates (IM, PROG_E, PROG_X) as assembler symbols, the branch
// targets (func, bpf_func_e, bpf_func_x and s390Symbols) as linker
// symbols, the image at s390Base; it returns the .text bytes.
func assembleS390(img s390Image) ([]byte, error) {
	dir, err := os.MkdirTemp("", "emu-s390x")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	obj, elf, bin := filepath.Join(dir, "a.o"), filepath.Join(dir, "a.elf"), filepath.Join(dir, "a.bin")
	as := []string{"-m64", "--defsym", fmt.Sprintf("IM=%#x", uint64(s390Im)),
		"--defsym", fmt.Sprintf("PROG_E=%#x", uint64(s390ProgE)), "--defsym", fmt.Sprintf("PROG_X=%#x", uint64(s390ProgX))}
	if img.variant != "" {
		as = append(as, "--defsym", img.variant+"=1")
	}
	as = append(as, "-o", obj, filepath.Join("testdata", "s390x", img.src))
	ld := []string{"-m", "elf64_s390", "-e", "0", fmt.Sprintf("-Ttext=%#x", uint64(s390Base)),
		fmt.Sprintf("--defsym=func=%#x", uint64(s390Func)),
		fmt.Sprintf("--defsym=bpf_func_e=%#x", uint64(s390FuncE)), fmt.Sprintf("--defsym=bpf_func_x=%#x", uint64(s390FuncX))}
	for name, addr := range s390Symbols {
		ld = append(ld, fmt.Sprintf("--defsym=%s=%#x", name, addr))
	}
	ld = append(ld, "-o", elf, obj)
	for _, c := range [][]string{
		append([]string{"s390x-linux-gnu-as"}, as...),
		append([]string{"s390x-linux-gnu-ld"}, ld...),
		{"s390x-linux-gnu-objcopy", "-O", "binary", "-j", ".text", elf, bin},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return os.ReadFile(bin)
}

// TestS390Assembled keeps testdata/s390x's .bin files the assembler's
// output for their sources: -update-s390x rewrites them; without it, when
// the binutils are installed, each must equal a fresh assembly.
func TestS390Assembled(t *testing.T) {
	_, err := exec.LookPath("s390x-linux-gnu-as")
	if err != nil && !*updateS390x {
		t.Skip("s390x-linux-gnu-as not installed (binutils-s390x-linux-gnu): the committed .bin files are used as they are")
	}
	for _, img := range s390Images() {
		b, err := assembleS390(img)
		require.NoError(t, err)
		if *updateS390x {
			require.NoError(t, os.WriteFile(img.bin(), b, 0o644))
			continue
		}
		old, err := os.ReadFile(img.bin())
		require.NoError(t, err)
		if !bytes.Equal(old, b) {
			t.Errorf("%s is stale: rerun go test ./emu -run TestS390Assembled -update-s390x", img.bin())
		}
	}
}

// s390Bin reads a committed test image.
func s390Bin(t *testing.T, src, variant string) []byte {
	t.Helper()
	b, err := os.ReadFile(s390Image{src, variant}.bin())
	require.NoError(t, err)
	return b
}

// s390Fields reads an instruction's fields from the decoder's arguments,
// in the shape decodeS390 gives them; ok is false for an operation the
// machine does not model.
func s390Fields(in s390xasm.Inst) (o sop, ok bool) {
	reg := func(i int) uint8 { return uint8(in.Args[i].(s390xasm.Reg) - s390xasm.R0) }
	base := func(i int) uint8 { return uint8(in.Args[i].(s390xasm.Base) - s390xasm.B0) }
	index := func(i int) uint8 { return uint8(in.Args[i].(s390xasm.Index) - s390xasm.X0) }
	d12 := func(i int) int64 { return int64(in.Args[i].(s390xasm.Disp12)) }
	d20 := func(i int) int64 { return int64(int32(uint32(in.Args[i].(s390xasm.Disp20))<<12) >> 12) }
	o.kind, ok = s390Ops[in.Op]
	if !ok {
		return o, false
	}
	switch in.Op {
	case s390xasm.LGR, s390xasm.LTGR:
		o.r1, o.r2 = reg(0), reg(1)
	case s390xasm.LGBR, s390xasm.LLGCR, s390xasm.LGHR, s390xasm.LLGHR, s390xasm.LGFR, s390xasm.LLGFR:
		o.r1, o.r2 = reg(0), reg(1)
		o.ext = map[s390xasm.Op]uint8{s390xasm.LGBR: 1, s390xasm.LLGCR: 1, s390xasm.LGHR: 2, s390xasm.LLGHR: 2, s390xasm.LGFR: 4, s390xasm.LLGFR: 4}[in.Op]
		o.signed = in.Op == s390xasm.LGBR || in.Op == s390xasm.LGHR || in.Op == s390xasm.LGFR
	case s390xasm.AGHI, s390xasm.LGHI:
		o.r1, o.imm = reg(0), int64(in.Args[1].(s390xasm.Sign16))
	case s390xasm.LA:
		o.r1, o.d, o.x, o.b = reg(0), d12(1), index(2), base(3)
	case s390xasm.LG, s390xasm.LTG, s390xasm.STG:
		o.r1, o.d, o.x, o.b = reg(0), d20(1), index(2), base(3)
	case s390xasm.STMG, s390xasm.LMG:
		o.r1, o.r2, o.d, o.b = reg(0), reg(1), d20(2), base(3)
	case s390xasm.MVC, s390xasm.XC:
		o.d, o.length, o.b, o.d2, o.b2 = d12(0), int(in.Args[1].(s390xasm.Len))+1, base(2), d12(3), base(4)
	case s390xasm.LLIHF, s390xasm.OILF:
		o.r1, o.imm = reg(0), int64(uint32(in.Args[1].(s390xasm.Sign32)))
	case s390xasm.BRASL:
		o.r1, o.imm = reg(0), 2*int64(int32(in.Args[1].(s390xasm.RegIm32)))
	case s390xasm.BRCL:
		o.mask, o.imm = uint8(in.Args[0].(s390xasm.Mask)), 2*int64(int32(in.Args[1].(s390xasm.RegIm32)))
	case s390xasm.BASR:
		o.r1, o.r2 = reg(0), reg(1)
	case s390xasm.BCR:
		o.mask, o.r2 = uint8(in.Args[0].(s390xasm.Mask)), reg(1)
	}
	return o, true
}

// decodeOneS390 decodes one instruction at the start of b with
// decodeS390 at s390Base.
func decodeOneS390(b []byte) *sop {
	e := &Emulator{s: Setup{Arch: "s390x", Code: b, Base: s390Base}}
	return e.decodeS390(0)
}

// compareS390 holds decodeS390's reading of one instruction against the
// decoder's; it returns whether the instruction is modelled and an
// error when the readings disagree.
func compareS390(b []byte) (modelled bool, err error) {
	mine := decodeOneS390(b)
	in, derr := s390xasm.Decode(b)
	if derr != nil || in.Op == 0 {
		if mine.err == "" {
			return false, fmt.Errorf("% x: the decoder refuses it (%v), decodeS390 gives %+v", b, derr, *mine)
		}
		return false, nil
	}
	want, ok := s390Fields(in)
	if !ok {
		if mine.err == "" {
			return false, fmt.Errorf("% x %s: decodeS390 models an operation outside the list: %+v", b, s390xasm.GNUSyntax(in, s390Base), *mine)
		}
		return false, nil
	}
	if mine.err != "" {
		return true, fmt.Errorf("% x %s: %s", b, s390xasm.GNUSyntax(in, s390Base), mine.err)
	}
	got := sop{kind: mine.kind, r1: mine.r1, r2: mine.r2, x: mine.x, b: mine.b, b2: mine.b2, d: mine.d, d2: mine.d2,
		length: mine.length, ext: mine.ext, signed: mine.signed, mask: mine.mask, imm: mine.imm}
	if got != want {
		return true, fmt.Errorf("% x %s: decodeS390 %+v, s390xasm %+v", b, s390xasm.GNUSyntax(in, s390Base), got, want)
	}
	if (mine.kind == sBrasl || mine.kind == sBrcl) && mine.target != s390Base+uint64(mine.imm) {
		return true, fmt.Errorf("% x: target %#x, want %#x", b, mine.target, s390Base+uint64(mine.imm))
	}
	return true, nil
}

// TestS390FieldsAgainstDecoder: the fields decodeS390 reads from the
// encoding agree with s390xasm's arguments for every 2-byte instruction
// and for random 4- and 6-byte words of each modelled opcode (and its
// neighbours), and every instruction s390xasm decodes to a modelled
// operation is modelled.
func TestS390FieldsAgainstDecoder(t *testing.T) {
	var words [][]byte
	for w := 0; w < 1<<14; w++ { // every 2-byte encoding (first byte 0x00-0x3f)
		words = append(words, binary.BigEndian.AppendUint16(nil, uint16(w)))
	}
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int, lead ...byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		copy(b, lead)
		return b
	}
	for range 3000 {
		words = append(words,
			rnd(4, 0x41), rnd(4, 0xa7), rnd(4, 0xa7, byte(r.IntN(16))<<4|byte([]int{9, 0xb}[r.IntN(2)])),
			rnd(4, 0xb9), rnd(4, 0xb9, []byte{0x02, 0x04, 0x06, 0x07, 0x14, 0x16, 0x84, 0x85}[r.IntN(8)], 0),
			rnd(6, 0xc0), rnd(6, 0xc0, byte(r.IntN(16))<<4|[]byte{4, 5, 0xd, 0xe}[r.IntN(4)]),
			rnd(6, 0xd2), rnd(6, 0xd7), rnd(6, 0xe3), rnd(6, 0xeb))
		w := rnd(6, 0xe3)
		w[5] = []byte{0x02, 0x04, 0x24}[r.IntN(3)]
		words = append(words, w)
		w = rnd(6, 0xeb)
		w[5] = []byte{0x04, 0x24}[r.IntN(2)]
		words = append(words, w)
	}
	checked, bad := 0, 0
	for _, b := range words {
		modelled, err := compareS390(b)
		if err != nil {
			t.Error(err)
			if bad++; bad > 20 {
				t.Fatal("too many")
			}
		}
		if modelled {
			checked++
		}
	}
	t.Logf("%d encodings agree", checked)
	if checked < 20000 {
		t.Errorf("only %d modelled encodings checked", checked)
	}
}

// splitS390 splits code into instructions by their length codes.
func splitS390(t *testing.T, code []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for off := 0; off < len(code); {
		n := s390Len(code[off])
		require.LessOrEqual(t, off+n, len(code), "a cut instruction at %#x", off)
		out = append(out, code[off:off+n])
		off += n
	}
	return out
}

// TestS390FieldsOfAssembled: every instruction of insns.s, as GNU as
// encoded it, is modelled, decodes to the decoder's fields and prints as
// objdump would have it (the decoder's GNU syntax).
func TestS390FieldsOfAssembled(t *testing.T) {
	code := s390Bin(t, "insns.s", "")
	ins := splitS390(t, code)
	kinds := map[uint8]bool{}
	for _, b := range ins {
		modelled, err := compareS390(b)
		require.NoError(t, err)
		require.True(t, modelled, "% x", b)
		kinds[decodeOneS390(b).kind] = true
	}
	for k := uint8(sLgr); k <= sBcr; k++ {
		require.True(t, kinds[k], "insns.s has no instruction of kind %d", k)
	}
	// A few readings spelled out: the field limits GNU as encoded.
	byText := map[string]*sop{}
	e := &Emulator{s: Setup{Arch: "s390x", Code: code, Base: s390Base}}
	for off := 0; off < len(code); off += s390Len(code[off]) {
		o := e.decodeS390(off)
		byText[o.text] = o
	}
	for text, want := range map[string]sop{
		"aghi %r0,-32768":           {kind: sAghi, r1: 0, imm: -32768},
		"lghi %r14,-1":              {kind: sLghi, r1: 14, imm: -1},
		"la %r5,8(%r2,%r3)":         {kind: sLa, r1: 5, x: 2, b: 3, d: 8},
		"la %r6,16":                 {kind: sLa, r1: 6, d: 16},
		"stg %r14,-524288(%r15)":    {kind: sStg, r1: 14, b: 15, d: -524288},
		"stg %r0,524287(%r2)":       {kind: sStg, r1: 0, b: 2, d: 524287},
		"lg %r1,0(%r9,%r15)":        {kind: sLg, r1: 1, x: 9, b: 15},
		"stmg %r14,%r3,-1000(%r15)": {kind: sStmg, r1: 14, r2: 3, b: 15, d: -1000},
		"mvc 4095(256,%r1),0(%r2)":  {kind: sMvc, d: 4095, length: 256, b: 1, b2: 2},
		"xc 0(256,%r14),4095(%r13)": {kind: sXc, length: 256, b: 14, d2: 4095, b2: 13},
		"lgfr %r2,%r2":              {kind: sExt, r1: 2, r2: 2, ext: 4, signed: true},
		"llgcr %r3,%r12":            {kind: sExt, r1: 3, r2: 12, ext: 1},
		"basr %r1,%r0":              {kind: sBasr, r1: 1},
		"br %r14":                   {kind: sBcr, mask: 15, r2: 14},
		"br %r0":                    {kind: sBcr, mask: 15}, // bcr 15,%r0: no branch
	} {
		o := byText[text]
		if o == nil {
			t.Errorf("no %q in insns.s (have %v)", text, slices.Sorted(maps.Keys(byText)))
			continue
		}
		got := sop{kind: o.kind, r1: o.r1, r2: o.r2, x: o.x, b: o.b, b2: o.b2, d: o.d, d2: o.d2,
			length: o.length, ext: o.ext, signed: o.signed, mask: o.mask, imm: o.imm}
		if got != want {
			t.Errorf("%s: %+v, want %+v", text, got, want)
		}
	}
	// "start" is the first instruction, "end" the first nopr %r7 (GNU as
	// pads the section with more).
	end := -1
	for off := 0; off < len(code) && end < 0; off += s390Len(code[off]) {
		if e.decodeS390(off).text == "nopr %r7" {
			end = off
		}
	}
	for _, o := range byText {
		if o.kind == sBrasl && o.r1 == 14 && o.target != s390Base {
			t.Errorf("%s: target %#x, want start %#x", o.text, o.target, uint64(s390Base))
		}
		if o.kind == sBrasl && o.r1 == 0 && o.target != s390Base+uint64(end) {
			t.Errorf("%s: target %#x, want end at %#x", o.text, o.target, end)
		}
	}
}

// TestS390DecodeErrors: each instruction of unmodelled.s, the zero fill,
// a cut instruction and an undecodable opcode stop the run with a decode
// violation at their offset; the instruction before them runs.
func TestS390DecodeErrors(t *testing.T) {
	nopr := s390Bin(t, "insns.s", "")
	nopr = nopr[len(nopr)-2:] // nopr %r7
	require.Equal(t, "nopr %r7", decodeOneS390(nopr).text)
	type tc struct {
		name string
		code []byte
		want string
	}
	var tcs []tc
	for _, b := range splitS390(t, s390Bin(t, "unmodelled.s", "")) {
		in, err := s390xasm.Decode(b)
		require.NoError(t, err)
		tcs = append(tcs, tc{in.Op.String(), b, "not modelled"})
	}
	require.Len(t, tcs, 6)
	stg := splitS390(t, s390Bin(t, "insns.s", ""))[22] // stg %r1,152(%r15)
	tcs = append(tcs,
		tc{"zero fill", []byte{0, 0, 0, 0}, "all-zero halfword"},
		tc{"cut", stg[:4], "partial 6-byte"},
		tc{"cut halfword", stg[:1], "partial instruction halfword"},
		tc{"undecodable", []byte{0x01, 0x11}, "cannot decode"})
	for _, c := range tcs {
		s := Setup{Arch: "s390x", Code: append(slices.Clone(nopr), c.code...), Base: s390Base, Func: s390Func, OrigEntry: s390Func + 6}
		e, err := New(s)
		require.NoError(t, err)
		res := e.Run(Run{})
		if len(res.Violations) != 1 || res.Violations[0].Check != CheckDecode || res.Violations[0].Off != 2 ||
			!strings.Contains(res.Violations[0].Msg, c.want) || res.Insns != 2 {
			t.Errorf("%s: %v (%d insns), want one %s violation at 0x2 saying %q", c.name, res.Violations, res.Insns, CheckDecode, c.want)
		}
	}
}

// s390FrameCase is the case frame.s was written for.
const s390FrameCase = "target f(u64, struct12, u32, u64, u64, u64) -> u64\nprog e fentry\nprog x fexit\nattach e\nattach x\nrun 0x1111 0x2222 0x3333 0x4444 0x5555 0x6666\n"

// s390FramePlan is the model's plan of s390FrameCase and its run.
func s390FramePlan(t *testing.T) (*trampoline.Plan, Run, []*trampoline.Prog) {
	t.Helper()
	c, err := cases.Parse("frame.tramp", []byte(s390FrameCase))
	require.NoError(t, err)
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch("s390x")
	runs, err := RunSteps(c, s390xJIT(prof), a)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	cr := runs[0]
	require.NotNil(t, cr.Plan)
	require.Equal(t, trampoline.FlagCallOrig|trampoline.FlagSkipFrame, cr.Plan.Flags)
	// Bytes 8-11 of the struct passed by reference: the low bytes of Hi.
	cr.Run.Args[1].Hi = 0xaabbccdd
	return cr.Plan, cr.Run, c.Progs
}

func s390FrameSetup(code []byte, p *trampoline.Plan, progs []*trampoline.Prog) Setup {
	return Setup{Arch: "s390x", Code: code, Base: s390Base, Func: s390Func, OrigEntry: s390Func + 6, Im: s390Im,
		Symbols: s390Symbols, Model: p.Func, TailCallCtx: true,
		Progs: []Prog{{Name: "e", Index: 0, Kind: progs[0].Kind, Ptr: s390ProgE, BPFFunc: s390FuncE},
			{Name: "x", Index: 1, Kind: progs[1].Kind, Ptr: s390ProgX, BPFFunc: s390FuncX}}}
}

// TestS390Frame runs frame.s, a trampoline written after the kernel's
// emission order, through the s390x entry convention: it agrees with
// the model (the programs see the arguments, the 12-byte struct's bytes
// copied from the caller's copy big-endian, the stack argument; the
// body gets the caller's pointer and stack argument and the tail call
// counter, which goes back to the caller), and each broken variant fails
// exactly its checks.
func TestS390Frame(t *testing.T) {
	p, run, progs := s390FramePlan(t)
	want := map[string][]string{
		"":                nil,
		"SP_NOT_RESTORED": {CheckSP},
		"NO_BACKCHAIN":    {CheckBackchain},
		"CALLER_WRITE":    {CheckFrame},
		"MISALIGN_CALL":   {CheckAlign},
		"CC_AFTER_CALL":   {CheckControl},
		"NO_STACK_ARG":    {CheckUninit, CheckOrigArgs},
		"NO_TCC_IN":       {CheckUninit, CheckTailCallCtx},
		"WRONG_REF":       {CheckOrigArgs},
		"CLOBBER_R7":      {CheckCalleeSaved},
		"NO_TCC_OUT":      {CheckTailCallCtx},
	}
	require.Len(t, want, len(s390FrameVariants)+1)
	for _, v := range append([]string{""}, s390FrameVariants...) {
		s := s390FrameSetup(s390Bin(t, "frame.s", v), p, progs)
		res, err := Check(s, p, run)
		require.NoError(t, err)
		var got []string
		if res.Err() != nil {
			got = res.Failed()
		}
		if v == "CC_AFTER_CALL" {
			// The run stops at the branch; Verify adds what did not happen.
			got = got[:1]
		}
		if fmt.Sprint(got) != fmt.Sprint(want[v]) {
			t.Errorf("frame.s %s: failed %v, want %v: %v", v, got, want[v], res.Err())
		}
		if v != "" {
			t.Logf("%s: %v", v, res.Err())
			continue
		}
		require.True(t, res.Completed)
		require.Len(t, res.Calls, 2)
		wantArgs := []uint64{0x1111, 0x2222, 0xaabbccdd00000000, 0x3333, 0x4444, 0x5555, 0x6666}
		for _, c := range res.Calls {
			require.Equal(t, wantArgs, c.Args, c.Prog)
			require.Equal(t, uint64(7), c.FuncMeta, c.Prog)
		}
		require.Equal(t, uint64(0x7e57), *res.Calls[1].Ret)
		require.Equal(t, uint64(0x7e57), res.Retval)
		require.Equal(t, 1, res.OrigCalled)
	}
}

// TestS390Returns runs the returns of the three frame flavours: into the
// body at func+6 (entered, not called), straight to the caller (plain
// and through the expoline thunk), and BPF_TRAMP_F_ORIG_STACK's call of
// the body through %r0 (plain and through the thunk).
func TestS390Returns(t *testing.T) {
	m := trampoline.FuncModel{NrArgs: 2, ArgSize: []int{8, 4}, RetSize: 4}
	for _, tc := range []struct {
		src, variant     string
		origRuns, called int
	}{
		{"jg.s", "", 1, 0},
		{"br14.s", "", 0, 0},
		{"br14.s", "EXPOLINE", 0, 0},
		{"origstack.s", "", 1, 1},
		{"origstack.s", "EXPOLINE", 1, 1},
	} {
		s := Setup{Arch: "s390x", Code: s390Bin(t, tc.src, tc.variant), Base: s390Base, Func: s390Func, OrigEntry: s390Func + 6,
			Symbols: s390Symbols, Model: m}
		e, err := New(s)
		require.NoError(t, err)
		res := e.Run(Run{Args: ArgsOf(m, []uint64{7, 0xfffffffe}), OrigRet: 0x1234567890})
		if err := res.Err(); err != nil || !res.Completed || res.OrigRuns != tc.origRuns || res.OrigCalled != tc.called {
			t.Errorf("%s %s: %v, completed %v, body ran %d times, called %d", tc.src, tc.variant, err, res.Completed, res.OrigRuns, res.OrigCalled)
		}
		if tc.origRuns == 1 && res.Retval != 0x34567890 {
			t.Errorf("%s %s: retval %#x", tc.src, tc.variant, res.Retval)
		}
	}
}

// TestS390ByteOrder: the s390x machine stores and reads memory
// big-endian, the others little-endian, the same bytes either way
// round.
func TestS390ByteOrder(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want []byte
	}{
		{"s390x", []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}},
		{"x86_64", []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}},
		{"arm64", []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}},
		{"riscv64", []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}},
	} {
		e, err := New(Setup{Arch: tc.arch, Base: s390Base, Func: s390Func, OrigEntry: s390Func + 6})
		require.NoError(t, err)
		m := &machine{e: e, stack: new([stackSize]byte), init: new([stackSize]bool), low: stackTop, run: &Run{}, res: &Result{}}
		a := uint64(stackTop - 0x100)
		m.poke(a, 8, 0x1122334455667788)
		require.Equal(t, tc.want, m.stack[a-stackLow:a-stackLow+8], tc.arch)
		v, ok := m.peek(a)
		require.True(t, ok)
		require.Equal(t, uint64(0x1122334455667788), v, tc.arch)
		require.Equal(t, uint64(0x1122334455667788), m.read(a, 8, "word"), tc.arch)
		// The first 4 bytes in memory order.
		w := uint64(0x11223344)
		if tc.arch != "s390x" {
			w = 0x55667788
		}
		require.Equal(t, w, m.read(a, 4, "half"), tc.arch)
		require.Empty(t, m.res.Violations)
	}
}

// TestS390ArgLayout: the s390x argument words, as the programs see them:
// a 9- to 16-byte argument is two words read big-endian from the
// caller's copy (the last one's bytes the low bytes of Hi, at its top),
// five arguments in registers and the rest on the stack.
func TestS390ArgLayout(t *testing.T) {
	m := trampoline.FuncModel{NrArgs: 7, ArgSize: []int{1, 16, 12, 9, 8, 4, 16}, ArgFlags: []int{0, 0, 1, 1, 0, 0, 1}}
	args := []Arg{{Lo: 0x1ff, Size: 1}, {Lo: 1, Hi: 2, Size: 16}, {Lo: 3, Hi: 0x1122334455, Size: 12, Struct: true},
		{Lo: 5, Hi: 0xabcd, Size: 9, Struct: true}, {Lo: 6, Size: 8}, {Lo: 0x1_0000_0007, Size: 4}, {Lo: 8, Hi: 9, Size: 16, Struct: true}}
	require.Equal(t, []uint64{0xff, 1, 2, 3, 0x2233445500000000, 5, 0xcd00000000000000, 6, 7, 8, 9}, ArgWords("s390x", m, args))
	locs, stack := placeArgs("s390x", m)
	require.Equal(t, 2, stack)
	var where []string
	for _, l := range locs {
		w := fmt.Sprintf("r%d", l.reg)
		if l.reg < 0 {
			w = fmt.Sprintf("stack%d", l.stack)
		}
		if l.byRef {
			w += fmt.Sprintf("*%d", l.word)
		}
		where = append(where, w)
	}
	require.Equal(t, []string{"r2", "r3*0", "r3*1", "r4*0", "r4*1", "r5*0", "r5*1", "r6", "stack0", "stack1*0", "stack1*1"}, where)
}

// TestS390Costs counts frame.s's run: its loads (lg, lmg and mvc's
// reads), stores (stg, stmg and mvc's writes), the helpers and programs
// it calls and its branches (the two not-taken "brcl 8" and the return;
// the skip NOPs, brcl 0, are none), as read off the source.
func TestS390Costs(t *testing.T) {
	p, run, progs := s390FramePlan(t)
	e, err := New(s390FrameSetup(s390Bin(t, "frame.s", ""), p, progs))
	require.NoError(t, err)
	res, c := e.RunCosts(run)
	require.NoError(t, res.Err())
	require.Equal(t, Costs{Insns: res.Insns, Loads: 11, Stores: 19, Calls: 8, Branches: 3}, c)
	// 18 in the prologue, 17 per program, 6 around the original
	// function, 9 in the epilogue.
	require.Equal(t, 18+17+6+17+9, res.Insns)
}

// TestS390FromKernelImage: a captured s390x image goes on at the 6-byte
// patch site's end, whichever branch ftrace (or the BPF prologue's PLT)
// put there.
func TestS390FromKernelImage(t *testing.T) {
	m := trampoline.FuncModel{NrArgs: 1, ArgSize: []int{8}, RetSize: 8}
	for _, kind := range []string{"brasl", "brcl", "unknown"} {
		s, err := FromKernelImage(KernelImage{Arch: "s390x", Code: s390Bin(t, "jg.s", ""), Base: s390Base, Func: s390Func, EntryKind: kind},
			s390Symbols, m, nil)
		require.NoError(t, err)
		require.Equal(t, uint64(s390Func+6), s.OrigEntry)
		e, err := New(s)
		require.NoError(t, err)
		res := e.Run(Run{Args: ArgsOf(m, []uint64{1}), OrigRet: 5})
		require.NoError(t, res.Err())
		require.Equal(t, 1, res.OrigRuns)
	}
	_, err := FromKernelImage(KernelImage{Arch: "s390x", Func: s390Func, EntryKind: "bl"}, s390Symbols, m, nil)
	require.ErrorContains(t, err, "not a brasl or brcl")
}

// TestS390ZeroArgTailCallCnt: with no argument the s390x trampoline's
// frame is 88 bytes, and the backchain it stores at 152(%r15) is the
// caller's tail_call_cnt word at stack_size + 64 (struct prog_frame):
// __arch_prepare_bpf_trampoline reads the counter after overwriting it,
// so a tail-call-reachable BPF target without arguments (a global
// subprogram) gets the backchain's upper half as its counter, called
// or entered, and its caller gets it back. With an argument the frame
// is larger and the counter passes through.
func TestS390ZeroArgTailCallCnt(t *testing.T) {
	a, _ := trampoline.LookupArch("s390x")
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	for _, tc := range []struct {
		src   string
		stack int
		fails bool
	}{
		{"target g() -> s32 bpf-prog tail-call global-subprog\nprog e fentry\nprog x fexit\nattach e\nattach x\nrun\n", 88, true},
		{"target g() -> s32 bpf-prog tail-call global-subprog\nprog e fentry\nattach e\nrun\n", 88, true},
		{"target g(u64) -> s32 bpf-prog tail-call global-subprog\nprog e fentry\nprog x fexit\nattach e\nattach x\nrun\n", 104, false},
	} {
		c, err := cases.Parse("g.tramp", []byte(tc.src))
		require.NoError(t, err)
		runs, err := RunSteps(c, s390xJIT(prof), a)
		require.NoError(t, err)
		cr := runs[len(runs)-1]
		require.NotZero(t, cr.Plan.Flags&trampoline.FlagTailCallCtx)
		g, err := Generate(cr.Plan, nil, c.Progs)
		require.NoError(t, err)
		require.Equal(t, tc.stack, g.Image.FrameSize)
		res, err := Check(g.Setup, cr.Plan, cr.Run)
		require.NoError(t, err)
		if tc.fails {
			require.Equal(t, []string{CheckTailCallCtx}, res.Failed(), "%s", tc.src)
			require.Contains(t, res.Err().Error(), fmt.Sprintf("is %#x", uint32(res.Calls[0].Ctx>>32)))
		} else {
			require.NoError(t, res.Err(), tc.src)
		}
	}
}
