package bpfobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
)

// Which image is live after a step.
//
// bpf_trampoline_update builds every new image in a fresh allocation whose
// ksym bpf_trampoline_<key> is added at once (bpf_tramp_image_alloc), then
// repoints the traced function at it (modify_fentry) and hands the old
// image to bpf_tramp_image_put. The old image, and with it its ksym, only
// goes away after one or two RCU-tasks grace periods and a workqueue
// callback (call_rcu_tasks[_trace], percpu_ref_kill when it calls the
// original function, bpf_tramp_image_free -> bpf_image_ksym_del), long
// after the link or close syscall returned. So right after a step
// /proc/kallsyms can list several bpf_trampoline_<key> for one key, in no
// particular address order (freed pack chunks are reused). The live one is
// where the traced function's patched entry leads: that is what the CPU
// runs next.

// memReader reads kernel memory: /proc/kcore in the guest.
type memReader interface {
	read(addr uint64, n int) ([]byte, error)
}

// liveKernel is what following a call site needs beyond its bytes.
type liveKernel struct {
	mem memReader
	// ftraceCaller (arm64) is where a call site out of bl range of its
	// trampoline branches instead (ftrace_find_callable_addr); 0: unknown.
	ftraceCaller uint64
	// directCallOff (arm64) is the byte offset of direct_call in struct
	// ftrace_ops, from the kernel's BTF; -1: unknown.
	directCallOff int
}

// follow returns the address the traced function's patched entry (cs,
// decoded from the function at fn) ends up running, and how it got there:
//
//   - x86_64: the call or jmp at the poke site goes to the image.
//   - arm64 "bl" to the image, in range.
//   - arm64 "bl" to a BPF program's PLT ("ldr xN, literal; br xN", at the
//     end of the program, used when the image is out of bl range): the
//     literal holds the image (bpf_arch_text_poke).
//   - arm64 "bl ftrace_caller" (a kernel function out of range of the
//     image, with DYNAMIC_FTRACE_WITH_CALL_OPS): the 8-byte literal at
//     ALIGN_DOWN(site - 12, 8) holds the function's ftrace_ops and
//     ftrace_caller branches to its direct_call, which
//     register/modify_ftrace_direct set to the image.
//
// An error says why the image cannot be told from the call site (idle
// site, shared list ops, unknown layout); the caller then falls back to
// kallsyms.
func (k liveKernel) follow(goarch string, fn uint64, cs guestapi.CallSite) (uint64, string, error) {
	switch cs.Kind {
	case "call", "jmp":
		if goarch != "amd64" {
			return 0, "", fmt.Errorf("%s call site on %s", cs.Kind, goarch)
		}
		return cs.Target, cs.Kind, nil
	case "auipc+jalr":
		if goarch != "riscv64" {
			return 0, "", fmt.Errorf("auipc+jalr call site on %s", goarch)
		}
		return k.followRISCV64(fn, cs)
	case "brasl", "brcl":
		if goarch != "s390x" {
			return 0, "", fmt.Errorf("%s call site on %s", cs.Kind, goarch)
		}
		return k.followS390X(cs)
	case "bl":
	case "nop":
		return 0, "", errors.New("the call site is a nop: nothing is attached")
	default:
		return 0, "", fmt.Errorf("the call site at %#x+%d is not a patched call (%s)", fn, cs.Offset, cs.Kind)
	}
	if goarch != "arm64" {
		return 0, "", fmt.Errorf("bl call site on %s", goarch)
	}
	t := cs.Target
	if k.ftraceCaller != 0 && t == k.ftraceCaller {
		site := fn + uint64(cs.Offset)
		dc, err := k.directCall((site - 12) &^ 7)
		if err != nil {
			return 0, "", err
		}
		return dc, "bl ftrace_caller, ops.direct_call", nil
	}
	b, err := k.mem.read(t, 8)
	if err != nil || len(b) < 8 {
		return 0, "", fmt.Errorf("reading the bl target %#x: %v", t, err)
	}
	if lit, ok := pltLiteral(t, b); ok {
		dst, err := k.u64(lit)
		if err != nil {
			return 0, "", fmt.Errorf("PLT literal at %#x: %w", lit, err)
		}
		return dst, "bl plt", nil
	}
	return t, "bl", nil
}

// followRISCV64: a call site that reaches ftrace_caller takes the
// function's ftrace_ops from the 8 bytes before the function (the
// CALL_OPS literal, ftrace_rec_update_ops; ftrace_call_adjust puts the
// record 8 bytes past it) and goes to its direct_call; any other target
// (a BPF program's poked prologue) is the image itself.
func (k liveKernel) followRISCV64(fn uint64, cs guestapi.CallSite) (uint64, string, error) {
	if k.ftraceCaller == 0 || cs.Target != k.ftraceCaller {
		return cs.Target, "auipc+jalr", nil
	}
	dc, err := k.directCall(fn - 8)
	if err != nil {
		return 0, "", err
	}
	return dc, "auipc+jalr ftrace_caller, ops.direct_call", nil
}

// followS390X: "brasl %r0" goes to the image (or to ftrace_caller, for a
// function whose direct call shares it with other ftrace ops: not told
// apart here). "brcl 15" goes to a kernel function's hotpatch trampoline
// ("brasl %r1" to the shared code, a pad, rest_of_intercepted_function,
// then the interceptor at +16, which ftrace_make_trampoline_call set to
// the image), or to a BPF program's prologue PLT ("lgrl %r0; lgrl %r1;
// br %r1", then ret at +16 and target at +24, which bpf_arch_text_poke
// set to the image).
func (k liveKernel) followS390X(cs guestapi.CallSite) (uint64, string, error) {
	if k.ftraceCaller != 0 && cs.Target == k.ftraceCaller {
		return 0, "", errors.New("brasl ftrace_caller: the direct call is shared with other ftrace ops")
	}
	if cs.Kind == "brasl" {
		return cs.Target, "brasl", nil
	}
	head, err := k.mem.read(cs.Target, 2)
	if err != nil || len(head) < 2 {
		return 0, "", fmt.Errorf("reading the brcl target %#x: %v", cs.Target, err)
	}
	var field uint64
	var via string
	switch {
	case head[0] == 0xc0 && head[1] == 0x15: // brasl %r1
		field, via = cs.Target+16, "brcl hotpatch, interceptor"
	case head[0] == 0xc4 && head[1]&0x0f == 0x08: // lgrl
		field, via = cs.Target+24, "brcl plt, target"
	default:
		return 0, "", fmt.Errorf("the brcl target %#x starts with % x: neither a hotpatch trampoline nor a BPF PLT", cs.Target, head)
	}
	dst, err := k.u64(field)
	if err != nil {
		return 0, "", fmt.Errorf("%s at %#x: %w", via, field, err)
	}
	if k.ftraceCaller != 0 && dst == k.ftraceCaller {
		return 0, "", errors.New("brcl hotpatch to ftrace_caller: the direct call is shared with other ftrace ops")
	}
	return dst, via, nil
}

// directCall is where ftrace_caller sends a function whose CALL_OPS
// literal (its struct ftrace_ops pointer, next to its patch site) is at
// lit: the ops' direct_call (call_direct_funcs' fast path).
func (k liveKernel) directCall(lit uint64) (uint64, error) {
	ops, err := k.u64(lit)
	if err != nil {
		return 0, fmt.Errorf("ftrace_ops literal at %#x: %w", lit, err)
	}
	if ops == 0 {
		return 0, fmt.Errorf("the ftrace_ops literal at %#x is 0", lit)
	}
	if k.directCallOff < 0 {
		return 0, errors.New("the call site goes through ftrace_caller and the BTF has no ftrace_ops.direct_call")
	}
	dc, err := k.u64(ops + uint64(k.directCallOff))
	if err != nil {
		return 0, fmt.Errorf("direct_call of ftrace_ops %#x: %w", ops, err)
	}
	if dc == 0 {
		return 0, fmt.Errorf("ftrace_ops %#x has no direct_call (ftrace_caller goes through the ops list)", ops)
	}
	return dc, nil
}

func (k liveKernel) u64(addr uint64) (uint64, error) {
	b, err := k.mem.read(addr, 8)
	if err != nil {
		return 0, err
	}
	if len(b) < 8 {
		return 0, fmt.Errorf("short read at %#x", addr)
	}
	return binary.NativeEndian.Uint64(b), nil
}

// pltLiteral recognises an arm64 PLT at addr, "ldr xN, <literal>; br xN"
// (b holds its 8 bytes), and returns the literal's address.
func pltLiteral(addr uint64, b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	ldr := binary.LittleEndian.Uint32(b)
	br := binary.LittleEndian.Uint32(b[4:])
	if ldr&0xff000000 != 0x58000000 || br&0xfffffc1f != 0xd61f0000 || (br>>5)&31 != ldr&31 {
		return 0, false
	}
	imm := int64(int32(ldr<<8) >> 13) // imm19, sign-extended, in words
	return addr + uint64(imm*4), true
}

// memberOffset is the byte offset of a struct member in a BTF spec, or
// -1 when the struct or member is not there.
func memberOffset(spec *btf.Spec, typ, member string) int {
	if spec == nil {
		return -1
	}
	var st *btf.Struct
	if err := spec.TypeByName(typ, &st); err != nil {
		return -1
	}
	for _, m := range st.Members {
		if m.Name == member {
			return int(m.Offset.Bytes())
		}
	}
	return -1
}

// errSeveralImages: kallsyms lists more than one image for the key and
// the call site did not say which is live.
var errSeveralImages = errors.New("several images")

// pickImage chooses the live image. live is where the call site leads
// (0: not known); kallsyms says whether cands (every address of the
// trampoline's ksym) were read. With kallsyms, the choice must be one of
// them: the call site's target when known, else the only one.
func pickImage(live uint64, kallsyms bool, cands []uint64) (uint64, string, error) {
	if !kallsyms {
		if live == 0 {
			return 0, "", errors.New("the call site does not lead to the image and kallsyms was not read")
		}
		return live, "call_site", nil
	}
	if live != 0 {
		for _, a := range cands {
			if a == live {
				return live, "call_site", nil
			}
		}
		return 0, "", fmt.Errorf("the call site leads to %#x, which is none of the %d images kallsyms lists %s", live, len(cands), hexList(cands))
	}
	switch len(cands) {
	case 0:
		return 0, "", errors.New("trampoline not found")
	case 1:
		return cands[0], "kallsyms", nil
	}
	return 0, "", errSeveralImages
}

// settle is how long to wait, and how often to look, for the superseded
// images to be freed when only kallsyms can tell the live image.
type settle struct {
	timeout, interval time.Duration
	now               func() time.Time
	sleep             func(time.Duration)
}

var defaultSettle = settle{timeout: 20 * time.Second, interval: 200 * time.Millisecond, now: time.Now, sleep: time.Sleep}

// imageChoice is pickImage's answer with what it was based on.
type imageChoice struct {
	Addr   uint64
	From   string
	Cands  []uint64
	Syms   []guestapi.Sym // the last [bpf] kallsyms read
	Reads  int
	Waited time.Duration // after the first read, for the others to go
}

// chooseImage reads the [bpf] symbols (readSyms), collects the addresses
// named name and picks the live image. When the call site does not say
// (live 0) and several remain, it reads again until only one is left
// (the others are superseded images awaiting their free) or s.timeout
// passes, which is an error naming every candidate: a wrong image is
// never chosen by address.
func chooseImage(name string, live uint64, liveErr error, readSyms func() ([]guestapi.Sym, error), s settle) (imageChoice, error) {
	var ch imageChoice
	var start time.Time // the end of the first read
	for {
		syms, err := readSyms()
		ch.Reads++
		if err != nil {
			return ch, err
		}
		if ch.Reads == 1 {
			start = s.now()
		}
		ch.Syms, ch.Cands = syms, nil
		for _, sym := range syms {
			if sym.Name == name {
				ch.Cands = append(ch.Cands, sym.Addr)
			}
		}
		addr, from, err := pickImage(live, true, ch.Cands)
		ch.Waited = s.now().Sub(start)
		if err == nil {
			ch.Addr, ch.From = addr, from
			if ch.Reads > 1 {
				ch.From = "kallsyms_settled"
			}
			return ch, nil
		}
		if err != errSeveralImages {
			return ch, err
		}
		if ch.Waited >= s.timeout {
			why := "the call site does not say which is live"
			if liveErr != nil {
				why = liveErr.Error()
			}
			return ch, fmt.Errorf("%d images named %s %s were still listed after %v (%s): the live one cannot be told", len(ch.Cands), name, hexList(ch.Cands), ch.Waited.Round(time.Millisecond), why)
		}
		s.sleep(s.interval)
	}
}

func hexList(a []uint64) string {
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = fmt.Sprintf("%#x", v)
	}
	return "[" + strings.Join(s, " ") + "]"
}
