package trampoline

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Type is an argument or return type as far as the trampoline cares: its
// size and whether it is a struct (passed by value), a pointer, signed,
// or void.
type Type struct {
	Size   int
	Struct bool
	Signed bool
	Ptr    bool
}

// Void is the return type of a function that returns nothing.
var Void = Type{}

// IsVoid says whether the type is void (size 0).
func (t Type) IsVoid() bool { return t.Size == 0 }

// String writes the type in case-file syntax: u8..u128, s8..s128, ptr,
// structN, void.
func (t Type) String() string {
	switch {
	case t.IsVoid():
		return "void"
	case t.Ptr:
		return "ptr"
	case t.Struct:
		return "struct" + strconv.Itoa(t.Size)
	case t.Signed:
		return "s" + strconv.Itoa(8*t.Size)
	}
	return "u" + strconv.Itoa(8*t.Size)
}

// ParseType reads a type in case-file syntax. void is accepted only when
// allowVoid is set (return types).
func ParseType(s string, allowVoid bool) (Type, error) {
	switch {
	case s == "void":
		if !allowVoid {
			return Type{}, errors.New("void is only a return type")
		}
		return Void, nil
	case s == "ptr":
		return Type{Size: 8, Ptr: true}, nil
	case strings.HasPrefix(s, "struct"):
		n, err := strconv.Atoi(s[len("struct"):])
		if err != nil || n < 1 || n > 255 {
			return Type{}, fmt.Errorf("bad struct type %q: want structN with N bytes, 1..255 (the kernel takes at most 16)", s)
		}
		return Type{Size: n, Struct: true}, nil
	case len(s) > 1 && (s[0] == 'u' || s[0] == 's'):
		bits, err := strconv.Atoi(s[1:])
		if err == nil {
			switch bits {
			case 8, 16, 32, 64, 128:
				return Type{Size: bits / 8, Signed: s[0] == 's'}, nil
			}
		}
	}
	return Type{}, fmt.Errorf("unknown type %q (want u8..u128, s8..s128, ptr, structN%s)", s, map[bool]string{true: ", void", false: ""}[allowVoid])
}

// Prototype is a function's argument and return types.
type Prototype struct {
	Args []Type
	Ret  Type
}

// String writes the prototype in case-file syntax, e.g. "(s32, u64) -> s32".
func (p Prototype) String() string {
	var a []string
	for _, t := range p.Args {
		a = append(a, t.String())
	}
	return "(" + strings.Join(a, ", ") + ") -> " + p.Ret.String()
}

// Attrs are the facts about a traced function that the kernel's
// attach-time checks consult besides its prototype.
type Attrs struct {
	// FmodRet: in a kfunc set registered with register_btf_fmodret_id_set.
	FmodRet bool
	// FmodRetSleepable: in such a set with KF_SLEEPABLE.
	FmodRetSleepable bool
	// ErrorInject: ALLOW_ERROR_INJECTION (fmod_ret and sleepable allowed).
	ErrorInject bool
	// NoReturn: listed in the verifier's noreturn_deny set.
	NoReturn bool
	// Deny: listed in the verifier's btf_id_deny set.
	Deny bool
	// NoTrace: ftrace cannot attach to the function (it is in BTF but not
	// in available_filter_functions, e.g. noinstr sched_clock). Measured
	// on 7.2.13: a multi link naming it is refused with ENOENT; a single
	// fentry loads, and its link fails with EBUSY when the trampoline
	// registers with ftrace.
	NoTrace bool
	// BPFProg: the target is a global function of a loaded BPF program,
	// not a kernel function (the only target freplace accepts).
	BPFProg bool
	// TailCallReachable: (BPFProg) the target program reaches tail calls,
	// so its trampolines get TAIL_CALL_CTX.
	TailCallReachable bool
	// TailCallViaSubprog: (TailCallReachable) the tail call sits in a
	// static subprogram the target function calls, not in the function
	// itself; the verifier's check_max_stack_depth marks the caller
	// reachable all the same. Only the guest's program differs.
	TailCallViaSubprog bool
	// TailCallTaken: (TailCallReachable) the tail call finds a program in
	// its program array, so the target returns what that program
	// returns (TailCalleeRet). Only the guest's program and the value
	// the traced function returns differ.
	TailCallTaken bool
	// GlobalSubprog: (BPFProg) the target is a global subprogram that the
	// program's main function calls, not the main function (the traced
	// address is that subprogram's image). Only the guest's program
	// differs.
	GlobalSubprog bool
}

// TailCalleeRet is what the program a taken tail call jumps to returns
// (the guest's, see TailCallTaken).
const TailCalleeRet = 0x7a11

// Target is the function a case's programs attach to.
type Target struct {
	Name  string
	Proto Prototype
	Attrs Attrs
	// BTFID is the function's id in its BTF, when known (it differs per
	// kernel build); 0 when unknown.
	BTFID uint32
	// ObjID is the id of the BTF object (vmlinux: 1) or, for BPFProg
	// targets, of the target program; 0 when unknown.
	ObjID uint32
}

// Key is the trampoline key (models bpf_trampoline_compute_key): for a
// kernel function (btf_obj_id << 32) | 0x80000000 | btf_id, for a BPF
// program (prog_id << 32) | btf_id. It is 0 when the ids are unknown.
func (t *Target) Key() uint64 {
	if t.BTFID == 0 || t.ObjID == 0 {
		return 0
	}
	if t.Attrs.BPFProg {
		return uint64(t.ObjID)<<32 | uint64(t.BTFID)
	}
	return uint64(t.ObjID)<<32 | 0x80000000 | uint64(t.BTFID)
}

// KsymName is the trampoline image's kallsyms name, "bpf_trampoline_<key>"
// (bpf_tramp_image_alloc), or "" when the key is unknown.
func (t *Target) KsymName() string {
	k := t.Key()
	if k == 0 {
		return ""
	}
	return "bpf_trampoline_" + strconv.FormatUint(k, 10)
}

// VmlinuxObjID is the BTF object id of vmlinux: it is parsed before any
// module BTF and ids are allocated from 1.
const VmlinuxObjID = 1

var (
	s8   = Type{Size: 1, Signed: true}
	s16  = Type{Size: 2, Signed: true}
	s32  = Type{Size: 4, Signed: true}
	u32  = Type{Size: 4}
	u64  = Type{Size: 8}
	ptr  = Type{Size: 8, Ptr: true}
	fmod = Attrs{FmodRet: true}
)

// The deterministic targets of net/bpf/test_run.c, which BPF_PROG_TEST_RUN
// on a tracing program calls with fixed arguments. bpf_fentry_test1 and the
// modify_return tests are in the bpf_test_modify_return_ids fmodret set,
// bpf_fentry_test1 with KF_SLEEPABLE; none is ALLOW_ERROR_INJECTION.
// "char" is signed in the x86 BTF; the sign only sets a flag no JIT reads.
var knownTargets = map[string]Target{
	"bpf_fentry_test1":          {Proto: Prototype{Args: []Type{s32}, Ret: s32}, Attrs: Attrs{FmodRet: true, FmodRetSleepable: true}},
	"bpf_fentry_test2":          {Proto: Prototype{Args: []Type{s32, u64}, Ret: s32}},
	"bpf_fentry_test3":          {Proto: Prototype{Args: []Type{s8, s32, u64}, Ret: s32}},
	"bpf_fentry_test4":          {Proto: Prototype{Args: []Type{ptr, s8, s32, u64}, Ret: s32}},
	"bpf_fentry_test5":          {Proto: Prototype{Args: []Type{u64, ptr, s16, s32, u64}, Ret: s32}},
	"bpf_fentry_test6":          {Proto: Prototype{Args: []Type{u64, ptr, s16, s32, ptr, u64}, Ret: s32}},
	"bpf_fentry_test7":          {Proto: Prototype{Args: []Type{ptr}, Ret: s32}},
	"bpf_fentry_test8":          {Proto: Prototype{Args: []Type{ptr}, Ret: s32}},
	"bpf_fentry_test9":          {Proto: Prototype{Args: []Type{ptr}, Ret: u32}},
	"bpf_fentry_test10":         {Proto: Prototype{Args: []Type{ptr}, Ret: s32}},
	"bpf_modify_return_test":    {Proto: Prototype{Args: []Type{s32, ptr}, Ret: s32}, Attrs: fmod},
	"bpf_modify_return_test2":   {Proto: Prototype{Args: []Type{s32, ptr, s16, s32, ptr, s8, s32}, Ret: s32}, Attrs: fmod},
	"bpf_modify_return_test_tp": {Proto: Prototype{Args: []Type{s32}, Ret: s32}, Attrs: fmod},
	// Functions in the verifier's deny sets, for the refusal paths.
	"do_exit":         {Proto: Prototype{Args: []Type{Type{Size: 8, Signed: true}}, Ret: Void}, Attrs: Attrs{NoReturn: true}},
	"migrate_disable": {Proto: Prototype{Ret: Void}, Attrs: Attrs{Deny: true}},
}

// KnownTarget returns the built-in description of a kernel function, with
// no BTF id (ids differ per build).
func KnownTarget(name string) (Target, bool) {
	t, ok := knownTargets[name]
	if !ok {
		return Target{}, false
	}
	t.Name = name
	t.Proto.Args = append([]Type(nil), t.Proto.Args...)
	t.ObjID = VmlinuxObjID
	return t, true
}

// KnownTargetNames lists the functions KnownTarget knows.
func KnownTargetNames() []string {
	var n []string
	for k := range knownTargets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// PrototypeFromBTF reads a function's prototype from BTF (models
// btf_distill_func_proto's view of types: modifiers and typedefs are
// skipped, pointers are 8 bytes, ints, enums and structs/unions keep their
// size). Types the kernel refuses (floats, arrays, variadics) are errors.
func PrototypeFromBTF(fn *btf.Func) (Prototype, error) {
	fp, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return Prototype{}, fmt.Errorf("%s: BTF type is %T, not a function prototype", fn.Name, fn.Type)
	}
	var p Prototype
	ret, err := typeFromBTF(fp.Return)
	if err != nil {
		return Prototype{}, fmt.Errorf("%s: return type: %w", fn.Name, err)
	}
	p.Ret = ret
	for i, prm := range fp.Params {
		if _, isVoid := prm.Type.(*btf.Void); isVoid || prm.Type == nil {
			if i == len(fp.Params)-1 {
				return Prototype{}, fmt.Errorf("%s: variadic functions are not supported", fn.Name)
			}
			return Prototype{}, fmt.Errorf("%s: arg%d is void", fn.Name, i)
		}
		t, err := typeFromBTF(prm.Type)
		if err != nil {
			return Prototype{}, fmt.Errorf("%s: arg%d: %w", fn.Name, i, err)
		}
		p.Args = append(p.Args, t)
	}
	return p, nil
}

func typeFromBTF(t btf.Type) (Type, error) {
	t = btf.UnderlyingType(t)
	switch v := t.(type) {
	case nil, *btf.Void:
		return Void, nil
	case *btf.Pointer:
		return Type{Size: 8, Ptr: true}, nil
	case *btf.Int:
		return Type{Size: int(v.Size), Signed: v.Encoding&btf.Signed != 0}, nil
	case *btf.Enum:
		return Type{Size: int(v.Size), Signed: v.Signed}, nil
	case *btf.Struct:
		return Type{Size: int(v.Size), Struct: true}, nil
	case *btf.Union:
		return Type{Size: int(v.Size), Struct: true}, nil
	}
	return Type{}, fmt.Errorf("unsupported BTF type %s", t)
}
