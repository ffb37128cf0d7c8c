package arch

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// RelocKind says how a relocated field is encoded.
type RelocKind string

// Relocation kinds.
const (
	// RelCall32 is the rel32 of an x86 call (e8): target - (field end).
	RelCall32 RelocKind = "x86_call_rel32"
	// RelJump32 is the rel32 of an x86 jmp (e9) or jcc (0f 8x).
	RelJump32 RelocKind = "x86_jump_rel32"
	// RelRIP32Imm8 is the disp32 of an x86 RIP-relative memory operand
	// followed by an imm8 (the call-depth template, sar qword
	// gs:[rip+disp32], 5): value - (field end + 1).
	RelRIP32Imm8 RelocKind = "x86_rip_rel32_imm8"
	// Imm64 is a 64-bit immediate (movabs); Imm32 a 32-bit one that the
	// CPU zero- or sign-extends (its field says which).
	Imm64 RelocKind = "imm64"
	Imm32 RelocKind = "imm32"
	// A64Branch26 is the imm26 of an arm64 bl.
	A64Branch26 RelocKind = "a64_bl26"
	// A64MovWide is an arm64 movz/movn/movk sequence building a value;
	// Len covers every instruction of it.
	A64MovWide RelocKind = "a64_movwide"
	// RVJal is a riscv64 jal (4 bytes) to the value; RVAuipcJalr an
	// auipc+jalr pair (8 bytes) reaching it PC-relatively.
	RVJal       RelocKind = "rv_jal"
	RVAuipcJalr RelocKind = "rv_auipc_jalr"
	// RVImm is the riscv64 JIT's emit_imm sequence (lui/li, addiw,
	// slli, addi, compressed or not) building the value in one register;
	// Len covers every instruction of it.
	RVImm RelocKind = "rv_imm"
	// S390RIL is an s390x brasl or brcl (RIL, 6 bytes) to the value: the
	// last four bytes are the signed halfword offset from the
	// instruction; Len covers the whole instruction.
	S390RIL RelocKind = "s390_ril_rel32"
	// S390Imm64Pair is the s390x JIT's load_imm64, "llihf %rN,hi; oilf
	// %rN,lo" building the value (Len 12).
	S390Imm64Pair RelocKind = "s390_llihf_oilf"
)

// Reloc is a field of the image whose bytes depend on an address.
type Reloc struct {
	Off  int       `json:"off"`
	Len  int       `json:"len"`
	Kind RelocKind `json:"kind"`
	// Sym names the value: a kernel symbol ("__bpf_tramp_enter"), "im",
	// "func" (the traced function), "func+9", "prog:NAME",
	// "bpf_func:NAME", or "image".
	Sym string `json:"sym"`
	// Value is the concrete value the field was rendered with.
	Value uint64 `json:"value"`
}

// Label names an offset of the image (do_fexit, program blocks, ...).
type Label struct {
	Off  int    `json:"off"`
	Name string `json:"name"`
}

// Slot is one named area of the trampoline's stack frame.
type Slot struct {
	Name string `json:"name"`
	// Off is the offset from the frame base register (x86: rbp, negative;
	// arm64: sp, positive; riscv64: s0, negative) of the slot's lowest
	// address.
	Off  int `json:"off"`
	Size int `json:"size"`
}

// Image is a generated trampoline.
type Image struct {
	Arch string `json:"arch"`
	// Code is exactly the bytes the kernel writes as code.
	Code []byte `json:"-"`
	// AllocSize is what the kernel allocates and reports as the ksym size
	// (x86: code + 64; arm64 and riscv64: the size pass's worst case).
	AllocSize int     `json:"alloc_size"`
	Relocs    []Reloc `json:"relocs"`
	Labels    []Label `json:"labels"`
	// Frame lists the stack slots; FrameSize is what the prologue reserves.
	Frame     []Slot `json:"frame"`
	FrameSize int    `json:"frame_size"`
}

// RelocAt returns the relocation covering byte off, if any.
func (im *Image) RelocAt(off int) (Reloc, bool) {
	for _, r := range im.Relocs {
		if off >= r.Off && off < r.Off+r.Len {
			return r, true
		}
	}
	return Reloc{}, false
}

// Addrs are the concrete addresses an image is rendered with: where it
// lives, its struct bpf_tramp_image, the traced function, the kernel's
// helper symbols and each program's struct bpf_prog and bpf_func. Its JSON
// form is tramp's --addrs file.
type Addrs struct {
	Image   uint64
	Im      uint64
	Func    uint64
	Symbols map[string]uint64
	Progs   map[string]ProgAddrs
	// CallThunks names the symbols whose padding holds an x86 call-depth
	// thunk: with call-depth tracking the kernel emits no accounting
	// before calls to them (x86_call_depth_emit_accounting, is_callthunk).
	CallThunks map[string]bool
}

// ProgAddrs are one program's addresses.
type ProgAddrs struct {
	Prog    uint64 // struct bpf_prog *
	BPFFunc uint64 // prog->bpf_func
}

type addrsJSON struct {
	Image   string                       `json:"image"`
	Im      string                       `json:"im"`
	Func    string                       `json:"func"`
	Symbols map[string]string            `json:"symbols"`
	Progs   map[string]map[string]string `json:"progs"`
	// CallThunks lists Addrs.CallThunks.
	CallThunks []string `json:"call_thunks,omitempty"`
}

func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// MarshalJSON writes the --addrs form, addresses as hex strings.
func (a Addrs) MarshalJSON() ([]byte, error) {
	j := addrsJSON{Image: hex(a.Image), Im: hex(a.Im), Func: hex(a.Func),
		Symbols: map[string]string{}, Progs: map[string]map[string]string{}}
	for k, v := range a.Symbols {
		j.Symbols[k] = hex(v)
	}
	for k, v := range a.Progs {
		j.Progs[k] = map[string]string{"prog": hex(v.Prog), "bpf_func": hex(v.BPFFunc)}
	}
	for k, v := range a.CallThunks {
		if v {
			j.CallThunks = append(j.CallThunks, k)
		}
	}
	sort.Strings(j.CallThunks)
	return json.Marshal(j)
}

// UnmarshalJSON reads the --addrs form strictly: unknown keys and values
// that are not hex addresses are errors naming the key.
func (a *Addrs) UnmarshalJSON(b []byte) error {
	var j addrsJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	parse := func(key, s string, required bool) (uint64, error) {
		if s == "" {
			if required {
				return 0, fmt.Errorf("%s: missing", key)
			}
			return 0, nil
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
		if err != nil || !strings.HasPrefix(strings.ToLower(s), "0x") {
			return 0, fmt.Errorf("%s: %q is not a 0x-prefixed hex address", key, s)
		}
		return v, nil
	}
	var err error
	out := Addrs{Symbols: map[string]uint64{}, Progs: map[string]ProgAddrs{}}
	if out.Image, err = parse("image", j.Image, true); err != nil {
		return err
	}
	if out.Im, err = parse("im", j.Im, true); err != nil {
		return err
	}
	if out.Func, err = parse("func", j.Func, true); err != nil {
		return err
	}
	for k, v := range j.Symbols {
		if out.Symbols[k], err = parse("symbols."+k, v, true); err != nil {
			return err
		}
	}
	for name, m := range j.Progs {
		var pa ProgAddrs
		for k, v := range m {
			switch k {
			case "prog":
				pa.Prog, err = parse("progs."+name+".prog", v, true)
			case "bpf_func":
				pa.BPFFunc, err = parse("progs."+name+".bpf_func", v, true)
			default:
				err = fmt.Errorf("progs.%s: unknown key %q (want prog, bpf_func)", name, k)
			}
			if err != nil {
				return err
			}
		}
		out.Progs[name] = pa
	}
	for _, k := range j.CallThunks {
		if _, ok := out.Symbols[k]; !ok {
			return fmt.Errorf("call_thunks: %q is not one of the symbols", k)
		}
		if out.CallThunks == nil {
			out.CallThunks = map[string]bool{}
		}
		out.CallThunks[k] = true
	}
	*a = out
	return nil
}

// LoadAddrs reads an --addrs file.
func LoadAddrs(path string) (Addrs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Addrs{}, err
	}
	var a Addrs
	if err := json.Unmarshal(b, &a); err != nil {
		return Addrs{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Symbol returns a helper symbol's address or an error naming it.
func (a *Addrs) Symbol(name string) (uint64, error) {
	v, ok := a.Symbols[name]
	if !ok {
		var have []string
		for k := range a.Symbols {
			have = append(have, k)
		}
		sort.Strings(have)
		return 0, fmt.Errorf("no address for symbol %s (have: %s)", name, strings.Join(have, ", "))
	}
	return v, nil
}

// Prog returns a program's addresses or an error naming it.
func (a *Addrs) Prog(name string) (ProgAddrs, error) {
	v, ok := a.Progs[name]
	if !ok {
		return ProgAddrs{}, fmt.Errorf("no addresses for program %s", name)
	}
	return v, nil
}

// SlotName names the i-th slot of a numbered kind ("arg3", "cookie0"),
// without allocating for the usual counts.
func SlotName(kind string, i int) string {
	switch {
	case kind == "arg" && i < len(argNames):
		return argNames[i]
	case kind == "cookie" && i < len(cookieNames):
		return cookieNames[i]
	}
	return kind + strconv.Itoa(i)
}

var argNames, cookieNames = numbered("arg", 16), numbered("cookie", 40)

func numbered(kind string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = kind + strconv.Itoa(i)
	}
	return out
}
