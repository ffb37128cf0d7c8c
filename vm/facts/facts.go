package facts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/recording"
)

// Source says where a fact was read.
type Source string

// The sources, in the order a reader should trust them.
const (
	FromBTF    Source = "btf"    // the image's vmlinux BTF, read on the host
	FromConfig Source = "config" // the package's build config
	FromImage  Source = "image"  // the image itself (release string)
	FromTable  Source = "table"  // trampoline.Deltas: no kernel states it
	Assumed    Source = "assumed"
)

// Fact is one fact with its source and where in it.
type Fact struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source Source `json:"source"`
	// Where names the place in the source: the BTF type or enum value,
	// the config option, the delta and its evidence.
	Where string `json:"where"`
}

// Kernel is what one kernel build states.
type Kernel struct {
	Arch    kernels.Arch
	Release string // e.g. "7.2.13+deb14-cloud-amd64"
	// SlotLimit is BPF_MAX_TRAMP_LINKS from BTF.
	SlotLimit int
	// AttachTypes is the bpf_attach_type enum from BTF.
	AttachTypes map[string]uint64
	// Kfuncs are the kfuncs of kfuncNames that BTF has.
	Kfuncs map[string]bool
	// Config holds the build config's options (CONFIG_ prefix kept),
	// nil when no config was found.
	Config map[string]string
	// Facts lists every fact in the order Read found them.
	Facts []Fact
	// unstated are the consulted options a recording's facts do not
	// carry at all (recorded before tramp consulted them): unknown, not
	// "not set".
	unstated map[string]bool
}

// Read collects the facts of a kernel image; config is the build config's
// path ("" when there is none: the config facts are then missing, and
// Profile assumes the Debian defaults and says so).
func Read(image, config string, arch kernels.Arch) (*Kernel, error) {
	k := &Kernel{Arch: arch}
	rel, err := kernels.DetectRelease(image)
	if err != nil {
		return nil, err
	}
	k.Release = rel
	k.add("release", rel, FromImage, "the image's version string")
	raw, err := kernels.ImageBTF(image)
	if err != nil {
		return nil, err
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: vmlinux BTF: %w", image, err)
	}
	if err := k.readBTF(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	if config != "" {
		data, err := os.ReadFile(config)
		if err != nil {
			return nil, err
		}
		k.Config = ParseConfig(data)
		k.readConfig()
	}
	return k, nil
}

// Stated is what the build states that the model consults, for a
// recording to carry (FromStated reads it back).
func (k *Kernel) Stated() *recording.StatedFacts {
	st := &recording.StatedFacts{SlotLimit: k.SlotLimit, AttachTypes: map[string]uint64{}}
	for _, fn := range kfuncNames {
		if k.Kfuncs[fn] {
			st.Kfuncs = append(st.Kfuncs, fn)
		}
	}
	for _, n := range attachTypeNames {
		if v, ok := k.AttachTypes[n]; ok {
			st.AttachTypes[n] = v
		}
	}
	if k.Config != nil {
		st.Config = map[string]string{}
		k.eachOption(func(name, value, _ string) { st.Config[name] = value })
	}
	return st
}

// FromStated is the Kernel whose facts a recording carries (Stated): the
// same facts Read gives for the options and attach types tramp consults,
// so that Profile makes the same profile offline.
func FromStated(release string, arch kernels.Arch, st *recording.StatedFacts) (*Kernel, error) {
	if st == nil {
		return nil, errors.New("the recording carries no stated facts (recorded before tramp kept them)")
	}
	if st.SlotLimit <= 0 {
		return nil, fmt.Errorf("stated facts: BPF_MAX_TRAMP_LINKS %d", st.SlotLimit)
	}
	k := &Kernel{Arch: arch, Release: release, SlotLimit: st.SlotLimit, AttachTypes: st.AttachTypes, Kfuncs: map[string]bool{}}
	for _, fn := range st.Kfuncs {
		k.Kfuncs[fn] = true
	}
	k.add("release", release, FromImage, "the recording's kernel release")
	k.addBTFFacts()
	if st.Config != nil {
		k.Config = map[string]string{}
		for n, v := range st.Config {
			if v != "not set" {
				k.Config[n] = v
			}
		}
		k.eachOption(func(name, _, _ string) {
			if _, ok := st.Config[name]; !ok {
				if k.unstated == nil {
					k.unstated = map[string]bool{}
				}
				k.unstated[name] = true
			}
		})
		k.readConfig()
	}
	return k, nil
}

func (k *Kernel) add(name, value string, src Source, where string) {
	k.Facts = append(k.Facts, Fact{Name: name, Value: value, Source: src, Where: where})
}

// Attach types tramp's model consults (enum bpf_attach_type).
var attachTypeNames = []string{
	"BPF_TRACE_FENTRY", "BPF_TRACE_FEXIT", "BPF_MODIFY_RETURN", "BPF_TRACE_FSESSION",
	"BPF_TRACE_FENTRY_MULTI", "BPF_TRACE_FEXIT_MULTI", "BPF_TRACE_FSESSION_MULTI",
}

// readBTF reads BPF_MAX_TRAMP_LINKS (an anonymous enum in
// include/linux/bpf.h, which the kernel's selftests read the same way) and
// the bpf_attach_type enum.
func (k *Kernel) readBTF(spec *btf.Spec) error {
	k.SlotLimit = -1
	for typ, err := range spec.All() {
		if err != nil {
			return fmt.Errorf("vmlinux BTF: %w", err)
		}
		e, ok := typ.(*btf.Enum)
		if !ok {
			continue
		}
		for _, v := range e.Values {
			if v.Name == "BPF_MAX_TRAMP_LINKS" {
				k.SlotLimit = int(v.Value)
			}
		}
		if e.Name == "bpf_attach_type" {
			k.AttachTypes = make(map[string]uint64, len(e.Values))
			for _, v := range e.Values {
				k.AttachTypes[v.Name] = v.Value
			}
		}
	}
	if k.SlotLimit < 0 {
		return errors.New("vmlinux BTF has no enum value BPF_MAX_TRAMP_LINKS")
	}
	if k.AttachTypes == nil {
		return errors.New("vmlinux BTF has no enum bpf_attach_type")
	}
	k.Kfuncs = map[string]bool{}
	for _, fn := range kfuncNames {
		var f *btf.Func
		if err := spec.TypeByName(fn, &f); err == nil {
			k.Kfuncs[fn] = true
		}
	}
	k.addBTFFacts()
	return nil
}

// The kfuncs tramp looks for in BTF.
var kfuncNames = []string{"bpf_session_is_return", "bpf_session_cookie"}

func (k *Kernel) addBTFFacts() {
	k.add("BPF_MAX_TRAMP_LINKS", fmt.Sprint(k.SlotLimit), FromBTF, "enum value BPF_MAX_TRAMP_LINKS")
	for _, n := range attachTypeNames {
		if v, ok := k.AttachTypes[n]; ok {
			k.add(n, fmt.Sprint(v), FromBTF, "enum bpf_attach_type")
		} else {
			k.add(n, "absent", FromBTF, "enum bpf_attach_type")
		}
	}
	for _, fn := range kfuncNames {
		val := "absent"
		if k.Kfuncs[fn] {
			val = "present"
		}
		k.add(fn, val, FromBTF, "kfunc (BTF FUNC)")
	}
}

// Config options that change what tramp models or generates.
// An arch of "" means every arch.
var configOptions = []struct {
	arch      kernels.Arch
	name, why string
}{
	{"", "CONFIG_FUNCTION_ERROR_INJECTION", "fmod_ret and sleepable targets (ALLOW_ERROR_INJECTION, else the syscall-wrapper fallback)"},
	{"", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "direct trampolines at all"},
	{"", "CONFIG_DEBUG_INFO_BTF", "vmlinux BTF (needed for the facts above)"},
	{"", "CONFIG_BPF_JIT", "the BPF JIT: without it no trampoline, every tracing load refused (Debian's s390x, built for z10; a z196 build of its source has it)"},
	{kernels.X86_64, "CONFIG_DYNAMIC_FTRACE_WITH_JMP", "jmp mode: a CALL_ORIG trampoline is entered by jmp"},
	{kernels.X86_64, "CONFIG_X86_KERNEL_IBT", "ENDBR64 at function entry, the patch site after it"},
	{kernels.X86_64, "CONFIG_MITIGATION_RETHUNK", "return thunks (which one is chosen at boot)"},
	{kernels.X86_64, "CONFIG_MITIGATION_CALL_DEPTH_TRACKING", "call-depth accounting (retbleed=stuff at boot)"},
	{kernels.X86_64, "CONFIG_MITIGATION_SLS", "int3 after ret"},
	{kernels.X86_64, "CONFIG_MITIGATION_ITS", "the ITS return thunk"},
	{kernels.ARM64, "CONFIG_ARM64_BTI_KERNEL", "bti jc at the trampoline's start"},
	{kernels.ARM64, "CONFIG_ARM64_PTR_AUTH_KERNEL", "pointer authentication in the kernel"},
	{kernels.RISCV64, "CONFIG_RISCV_ISA_C", "compressed (RVC) instructions in the trampoline"},
	{kernels.RISCV64, "CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS", "a traced function reaches its trampoline through ftrace_caller and its ops"},
	{kernels.S390X, "CONFIG_MARCH_Z10", "built for z10: no HAVE_EBPF_JIT (arch/s390 selects it from z196)"},
	{kernels.S390X, "CONFIG_EXPOLINE", "expolines: the trampoline returns and calls through __s390_indirect_jump_rN (nospec_uses_trampoline)"},
}

func (k *Kernel) readConfig() {
	k.eachOption(func(name, value, why string) { k.add(name, value, FromConfig, why) })
}

// eachOption calls f for every config option tramp consults on k's arch,
// in configOptions order, with its value ("not set" when absent).
func (k *Kernel) eachOption(f func(name, value, why string)) {
	for _, o := range configOptions {
		if o.arch != "" && o.arch != k.Arch {
			continue
		}
		v, ok := k.Config[o.name]
		if !ok {
			v = "not set"
		}
		f(o.name, v, o.why)
	}
}

// ConfigOn says whether a config option is y (or m).
func (k *Kernel) ConfigOn(name string) bool {
	v := k.Config[name]
	return v == "y" || v == "m"
}

// ParseConfig reads a kernel .config: CONFIG_X=value lines, with
// "# CONFIG_X is not set" as absent.
func ParseConfig(data []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

// Profile is the link model's profile for this build, named name: the
// slot limit and the attach types as the BTF states them, error injection
// and x86 jmp mode from the config (assumed absent, as in Debian's
// builds, without a config), and every delta no kernel states from the
// delta table. The facts used are appended to k.Facts.
func (k *Kernel) Profile(name string) (*trampoline.Profile, error) {
	v, err := trampoline.ParseVersion(k.Release)
	if err != nil {
		return nil, err
	}
	arch := string(k.Arch)
	p := &trampoline.Profile{
		Name:     name,
		Version:  v.String(),
		MaxLinks: map[string]int{arch: k.SlotLimit},
	}
	_, p.Fsession = k.AttachTypes["BPF_TRACE_FSESSION"]
	_, p.TracingMulti = k.AttachTypes["BPF_TRACE_FENTRY_MULTI"]
	applied, err := trampoline.ApplyDeltas(p, k.Release, string(k.Arch))
	if err != nil {
		return nil, err
	}
	// What the kernel states overrides the table: the config where it is
	// served, and BTF for func_meta (without the fsession attach type the
	// func_meta series is absent too).
	stated := map[string]Fact{}
	if k.Config != nil {
		p.ErrorInjection = k.ConfigOn("CONFIG_FUNCTION_ERROR_INJECTION")
		p.X86JmpMode = k.ConfigOn("CONFIG_DYNAMIC_FTRACE_WITH_JMP")
		if !k.unstated["CONFIG_BPF_JIT"] {
			p.JIT = map[string]bool{arch: k.ConfigOn("CONFIG_BPF_JIT")}
		}
		stated["x86-jmp-mode"] = Fact{Value: yesNo(p.X86JmpMode), Source: FromConfig, Where: "stated by CONFIG_DYNAMIC_FTRACE_WITH_JMP"}
	} else {
		k.add("CONFIG_FUNCTION_ERROR_INJECTION", "not set", Assumed, "no build config; Debian's cloud builds lack it")
	}
	if !p.Fsession {
		p.FuncMeta = false
		stated["func-meta"] = Fact{Value: "no", Source: FromBTF, Where: "no BPF_TRACE_FSESSION in bpf_attach_type: the func_meta series is absent"}
	}
	for _, a := range applied {
		if !a.Delta.AppliesTo(arch) {
			continue // moot on this arch's code
		}
		f, ok := stated[a.Delta.Name]
		switch {
		case ok:
			f.Where += " (the table would say " + yesNo(a.On) + ")"
		case a.Pinned:
			f = Fact{Value: yesNo(a.On), Source: FromTable, Where: a.Note}
		default:
			f = Fact{Value: yesNo(a.On), Source: Assumed, Where: a.Note}
		}
		f.Name = "delta " + a.Delta.Name
		k.Facts = append(k.Facts, f)
	}
	return p, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Table renders the facts as aligned text: name, value, source, where.
func (k *Kernel) Table() string {
	var b strings.Builder
	w := 0
	for _, f := range k.Facts {
		w = max(w, len(f.Name))
	}
	vw := 0
	for _, f := range k.Facts {
		vw = max(vw, len(f.Value))
	}
	for _, f := range k.Facts {
		fmt.Fprintf(&b, "%-*s  %-*s  %-7s  %s\n", w, f.Name, vw, f.Value, f.Source, f.Where)
	}
	return b.String()
}

// Sources counts the facts per source (for a summary line).
func (k *Kernel) Sources() string {
	n := map[Source]int{}
	for _, f := range k.Facts {
		n[f.Source]++
	}
	var keys []string
	for s := range n {
		keys = append(keys, string(s))
	}
	sort.Strings(keys)
	var parts []string
	for _, s := range keys {
		parts = append(parts, fmt.Sprintf("%d from %s", n[Source(s)], s))
	}
	return strings.Join(parts, ", ")
}
