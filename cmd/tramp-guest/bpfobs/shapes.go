//go:build linux

package bpfobs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/bpftramp/tramp/trampoline"
)

// ShapeBucket is the class of a prototype that decides the trampoline's
// layout: the argument count, the widest by-value argument, whether some
// argument is passed on the stack, and the return type.
type ShapeBucket struct {
	Args int // 0..12
	// Wide: "" (all arguments fit 8 bytes and none is a struct),
	// "struct8" (a struct of at most 8 bytes), "struct16" (a struct of 9
	// to 16 bytes) or "int128" (a 16-byte integer and no struct).
	Wide  string
	Stack bool   // some argument is passed on the stack
	Ret   string // void | ret (at most 8 bytes) | ret16 (16-byte integer) | retstruct
}

// String is the bucket's name, e.g. "a7-struct16-stack-ret".
func (b ShapeBucket) String() string {
	w := b.Wide
	if w == "" {
		w = "plain"
	}
	s := "reg"
	if b.Stack {
		s = "stack"
	}
	return fmt.Sprintf("a%d-%s-%s-%s", b.Args, w, s, b.Ret)
}

// ClassifyShape puts a prototype into its bucket for arch (x86_64 or
// arm64). Prototypes the kernel refuses outright (more than 12 arguments,
// an argument over 16 bytes) are errors.
func ClassifyShape(p trampoline.Prototype, arch string) (ShapeBucket, error) {
	var b ShapeBucket
	if len(p.Args) > trampoline.MaxFuncArgs {
		return b, fmt.Errorf("%d arguments (at most %d)", len(p.Args), trampoline.MaxFuncArgs)
	}
	b.Args = len(p.Args)
	rank := map[string]int{"": 0, "int128": 1, "struct8": 2, "struct16": 3}
	for i, a := range p.Args {
		if a.Size > 16 {
			return b, fmt.Errorf("arg%d is %d bytes (at most 16)", i, a.Size)
		}
		w := ""
		switch {
		case a.Struct && a.Size > 8:
			w = "struct16"
		case a.Struct:
			w = "struct8"
		case a.Size > 8:
			w = "int128"
		}
		if rank[w] > rank[b.Wide] {
			b.Wide = w
		}
	}
	stack, err := stackPassed(p.Args, arch)
	if err != nil {
		return b, err
	}
	b.Stack = stack
	switch {
	case p.Ret.IsVoid():
		b.Ret = "void"
	case p.Ret.Struct:
		b.Ret = "retstruct"
	case p.Ret.Size > 8:
		b.Ret = "ret16"
	default:
		b.Ret = "ret"
	}
	return b, nil
}

// stackPassed says whether the calling convention puts some argument on
// the stack: x86_64 SysV has 6 integer registers and passes an aggregate
// that does not fit the registers left in memory; arm64 AAPCS64 has 8,
// starts a 16-byte integer at an even register, and once an argument
// spills, every later one is on the stack too; riscv64 LP64 has 8 (a0-a7)
// and passes a 16-byte argument in the next two, or split between a7 and
// the stack (no register pair alignment for named arguments); s390x has
// 5 (r2-r6) and passes anything wider than 8 bytes by reference, so every
// argument takes one register or one stack slot.
func stackPassed(args []trampoline.Type, arch string) (bool, error) {
	var regs int
	switch arch {
	case "x86_64":
		regs = 6
	case "s390x":
		return len(args) > 5, nil
	case "arm64", "riscv64":
		regs = 8
	default:
		return false, fmt.Errorf("no calling convention for arch %q", arch)
	}
	used := 0
	for _, a := range args {
		n := (a.Size + 7) / 8
		if arch == "arm64" && !a.Struct && a.Size > 8 && used%2 == 1 {
			used++
		}
		if used+n > regs {
			return true, nil
		}
		used += n
	}
	return false, nil
}

// ShapeDenyPatterns are the functions a shapes job never attaches to
// (path.Match patterns on the name): the trampoline's own path and the
// BPF subsystem, code patching, RCU, preemption, locking, interrupts, the
// scheduler, printk, the tracers, entry and fault paths, the allocators,
// time keeping, and functions that may not return. The list is meant to
// be generous: there are far more candidates than buckets.
var ShapeDenyPatterns = []string{
	// The trampoline and BPF itself, and the tracers.
	"*bpf*", "*trampoline*", "*ftrace*", "*fentry*", "*fexit*", "*mcount*",
	"*trace*", "*perf*", "*kprobe*", "*uprobe*", "*fprobe*", "*rethook*",
	"*text_poke*", "*poke*", "*patch*", "*insn*", "*static_call*", "*jump_label*",
	"*kallsyms*", "*module*",
	// What __bpf_prog_enter/exit and the update path use.
	"migrate_*", "*rcu*", "*preempt*", "*percpu*", "*_ref_*", "*lock*", "*mutex*",
	"*rwsem*", "*sem_*", "down", "down_*", "up", "up_*", "*seqcount*", "*atomic*",
	"*irq*", "*IRQ*", "*softirq*", "*tasklet*", "*nmi*", "*ipi*", "*smp_*", "*on_each_cpu*",
	"*call_function*", "*stop_machine*", "*stop_cpu*", "*cpu_stop*", "*multi_cpu*",
	// Scheduler, idle, time.
	"*sched*", "__schedule", "*wake*", "*wait*", "*idle*", "*tick*", "*timer*",
	"*clock*", "*time*", "*jiffies*", "*cpuidle*", "context_switch", "*switch_to*",
	"*switch_mm*", "finish_task*", "*kthread*", "*worker*", "*_work", "*_work_*",
	// printk and consoles.
	"*printk*", "*console*", "*vprintk*", "*_log_*", "*tty*", "*serial*", "*uart*", "*8250*",
	"*pl011*", "*virtio*", "*hvc*",
	// Entry, exceptions, faults, syscalls.
	"*entry*", "*syscall*", "__x64_*", "__ia32_*", "__arm64_*", "__se_*", "__do_sys_*",
	"sys_*", "compat_sys_*", "exc_*", "do_el0_*", "do_el1_*", "el0_*", "el1_*",
	"*fault*", "*user_mode*", "*context_tracking*", "ct_*", "*exception*", "*_trap*",
	"*signal*", "*int3*", "*debug*", "*brk*", "*step*",
	// Memory management hot paths and the allocators.
	"*alloc*", "*free*", "kmem_*", "*kmalloc*", "*vmalloc*", "*vmap*", "*slab*",
	"*slub*", "*tlb*", "*pte*", "*pmd*", "*pud*", "*p4d*", "*pgd*", "*flush*",
	"*cache*", "*memcg*", "*lru*", "*swap*", "*pcp*", "*set_memory*", "*mm_*",
	"*vma*", "*mmap*", "*folio*", "*page*",
	// String and copy primitives everybody calls.
	"mem*", "*memcpy*", "*memset*", "*memmove*", "str*", "*copy_*", "*_user*",
	// Never returns, or dies.
	"do_exit", "do_group_exit", "*exit*", "*panic*", "*die*", "*oops*", "*bug*",
	"*BUG*", "*halt*", "*reboot*", "*restart*", "*power_off*", "*poweroff*", "*dead*",
	"*abort*", "*stack_chk*", "*ubsan*", "*kasan*", "*kcsan*", "*kmsan*", "*warn*",
	"*fortify*", "*crash*", "*kexec*", "*hibernate*", "*suspend*", "*resume*",
	"cpu_startup_entry", "start_kernel", "rest_init", "*watchdog*", "*hung*", "*lockup*",
	"*_noreturn*", "*unreachable*",
	// The guest's own plumbing (its results port, /proc/kcore reads).
	"*kcore*", "*virtqueue*", "*vring*",
	// Architecture and CPU internals.
	"arch_*", "__arch_*", "native_*", "x86_*", "*cpu*", "*fpu*", "*fpsimd*", "*sve*",
	"*mte*", "*ptrauth*", "*spectre*", "*mitigation*", "*retbleed*", "*srso*", "its_*",
	"*thunk*", "*paravirt*", "*pv_*", "*kvm*", "*xen*", "*hyperv*", "*efi*",
}

// ShapeDenied says whether fn is on ShapeDenyPatterns. The patterns only
// use '*' at their ends, so they are matched as exact names, prefixes,
// suffixes and substrings (path.Match is too slow under TCG for ~40000
// names times ~250 patterns); other patterns fall back to path.Match.
func ShapeDenied(fn string) bool {
	for _, p := range ShapeDenyPatterns {
		lead, trail := strings.HasPrefix(p, "*"), strings.HasSuffix(p, "*")
		core := strings.TrimSuffix(strings.TrimPrefix(p, "*"), "*")
		var ok bool
		switch {
		case strings.ContainsAny(core, "*?[\\"):
			ok, _ = path.Match(p, fn)
		case lead && trail:
			ok = strings.Contains(fn, core)
		case lead:
			ok = strings.HasSuffix(fn, core)
		case trail:
			ok = strings.HasPrefix(fn, core)
		default:
			ok = fn == core
		}
		if ok {
			return true
		}
	}
	return false
}

// ShapeCandidate is a function that passed every filter.
type ShapeCandidate struct {
	Name        string
	BTFID       uint32
	Proto       trampoline.Prototype
	Bucket      ShapeBucket
	ErrorInject bool
}

// Modifiable says whether fmod_ret may attach to the candidate as far as
// userspace can tell: it is on the error injection list or is an LSM hook
// (security_*); functions of fmodret kfunc sets are not visible here.
func (c ShapeCandidate) Modifiable() bool {
	return c.ErrorInject || strings.HasPrefix(c.Name, "security_")
}

// PickShapes picks up to perBucket candidates of every bucket: a seeded
// shuffle of the bucket (sorted by name first, so that the choice depends
// only on the set of candidates and the seed), with the first
// modifiable candidate (see Modifiable) moved to the front so that
// fmod_ret gets a function it may attach to where the bucket has one. The result is in
// bucket-name order.
func PickShapes(cands []ShapeCandidate, perBucket int, seed uint64) []ShapeCandidate {
	if perBucket <= 0 {
		perBucket = 1
	}
	byBucket := map[string][]ShapeCandidate{}
	for _, c := range cands {
		k := c.Bucket.String()
		byBucket[k] = append(byBucket[k], c)
	}
	keys := make([]string, 0, len(byBucket))
	for k := range byBucket {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []ShapeCandidate
	for _, k := range keys {
		cs := byBucket[k]
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
		h := fnv.New64a()
		h.Write([]byte(k))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		for i, c := range cs {
			if c.Modifiable() {
				copy(cs[1:i+1], cs[:i])
				cs[0] = c
				break
			}
		}
		out = append(out, cs[:min(perBucket, len(cs))]...)
	}
	return out
}

// parseFilterFunctions reads available_filter_functions ("name" or "name
// [module]" per line) or, with kallsyms set, /proc/kallsyms text symbols
// of vmlinux. It returns how often each vmlinux name occurs.
func parseFilterFunctions(r io.Reader, kallsyms bool) (map[string]int, error) {
	out := map[string]int{}
	if kallsyms {
		err := scanKallsyms(r, func(line []byte) bool { return !bytes.HasSuffix(line, []byte("]")) }, func(s guestapi.Sym) {
			if (s.Type == "t" || s.Type == "T") && !strings.ContainsAny(s.Name, " \t") {
				out[s.Name]++
			}
		})
		return out, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || len(f) > 1 && strings.HasPrefix(f[1], "[") {
			continue // empty, or a module's function
		}
		out[f[0]]++
	}
	return out, sc.Err()
}

// parseErrorInjectList reads debugfs error_injection/list ("name\tTYPE").
func parseErrorInjectList(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out[f[0]] = true
		}
	}
	return out, sc.Err()
}

// mountOnce mounts a pseudo file system unless probe is already there;
// it returns the mount's error.
func mountOnce(fstype, dir, probe string) error {
	if _, err := os.Stat(dir + "/" + probe); err == nil {
		return nil
	}
	os.MkdirAll(dir, 0o755)
	if err := unix.Mount(fstype, dir, fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	return nil
}

// traceable returns the functions ftrace can patch, how often each name
// occurs, and where that came from.
func traceable(scan *guestapi.ShapeScan) map[string]int {
	merr := mountOnce("tracefs", "/sys/kernel/tracing", "available_filter_functions")
	f, err := os.Open("/sys/kernel/tracing/available_filter_functions")
	if err != nil && merr != nil {
		err = fmt.Errorf("%v (%v)", err, merr)
	}
	if err == nil {
		defer f.Close()
		m, err := parseFilterFunctions(f, false)
		if err == nil && len(m) > 0 {
			scan.FuncSource = "available_filter_functions"
			return m
		}
		if err == nil {
			err = errors.New("empty")
		}
	}
	scan.FuncSource = "kallsyms"
	scan.FuncSourceNote = fmt.Sprintf("available_filter_functions unavailable (%v); text symbols of /proc/kallsyms instead", err)
	k, kerr := os.Open("/proc/kallsyms")
	if kerr != nil {
		scan.FuncSourceNote += "; " + kerr.Error()
		return nil
	}
	defer k.Close()
	m, kerr := parseFilterFunctions(k, true)
	if kerr != nil {
		scan.FuncSourceNote += "; " + kerr.Error()
	}
	return m
}

func errorInjectable(scan *guestapi.ShapeScan) map[string]bool {
	merr := mountOnce("debugfs", "/sys/kernel/debug", "error_injection")
	f, err := os.Open("/sys/kernel/debug/error_injection/list")
	if err != nil && merr != nil {
		err = fmt.Errorf("%v (%v)", err, merr)
	} else if errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("%v (kernel without CONFIG_FUNCTION_ERROR_INJECTION?)", err)
	}
	if err == nil {
		defer f.Close()
		var m map[string]bool
		if m, err = parseErrorInjectList(f); err == nil {
			scan.ErrorInject = len(m)
			return m
		}
	}
	scan.ErrorInject = -1
	scan.ErrorInjectNote = err.Error()
	return map[string]bool{}
}

// guestArch is the tramp name of the running architecture.
func guestArch() string {
	if runtime.GOARCH == "amd64" {
		return "x86_64"
	}
	return runtime.GOARCH
}

// scanShapes walks the BTF and returns every candidate.
func scanShapes(spec *btf.Spec, trace map[string]int, errinj map[string]bool, arch string, scan *guestapi.ShapeScan) ([]ShapeCandidate, error) {
	var funcs []*btf.Func
	btfCount := map[string]int{}
	for typ, err := range spec.All() {
		if err != nil {
			return nil, err
		}
		if fn, ok := typ.(*btf.Func); ok {
			funcs = append(funcs, fn)
			btfCount[fn.Name]++
		}
	}
	scan.BTFFuncs = len(funcs)
	scan.Buckets = map[string]int{}
	var out []ShapeCandidate
	for _, fn := range funcs {
		n, ok := trace[fn.Name]
		if !ok {
			continue
		}
		scan.Traceable++
		if ShapeDenied(fn.Name) {
			scan.Denied++
			continue
		}
		if n != 1 || btfCount[fn.Name] != 1 {
			scan.Ambiguous++
			continue
		}
		p, err := trampoline.PrototypeFromBTF(fn)
		if err != nil {
			scan.Refused++
			continue
		}
		b, err := ClassifyShape(p, arch)
		if err != nil {
			scan.OutOfRange++
			continue
		}
		id, err := spec.TypeID(fn)
		if err != nil {
			scan.Refused++
			continue
		}
		out = append(out, ShapeCandidate{Name: fn.Name, BTFID: uint32(id), Proto: p, Bucket: b, ErrorInject: errinj[fn.Name]})
		scan.Buckets[b.String()]++
	}
	scan.Candidates = len(out)
	return out, nil
}

// RunShapes runs a shapes job (see ShapeJob and the record kinds above).
func RunShapes(j guestapi.ShapeJob, emit func(kind string, payload any) error) error {
	t0 := time.Now()
	e, err := getEnv()
	if err != nil {
		return err
	}
	mixes := j.Mixes
	if len(mixes) == 0 {
		mixes = guestapi.DefaultShapeMixes
	}
	for _, m := range mixes {
		if _, ok := guestapi.ShapeMixes[m]; !ok {
			return fmt.Errorf("unknown shape mix %q", m)
		}
	}
	scan := guestapi.ShapeScan{Arch: guestArch(), Mixes: mixes}
	trace := traceable(&scan)
	errinj := errorInjectable(&scan)
	scan.ReadMillis = time.Since(t0).Milliseconds()
	t1 := time.Now()
	cands, err := scanShapes(e.spec, trace, errinj, scan.Arch, &scan)
	scan.BTFMillis = time.Since(t1).Milliseconds()
	if err != nil {
		return fmt.Errorf("scanning BTF: %w", err)
	}
	var chosen []ShapeCandidate
	if len(j.Funcs) > 0 {
		byName := map[string]ShapeCandidate{}
		for _, c := range cands {
			byName[c.Name] = c
		}
		for _, f := range j.Funcs {
			if c, ok := byName[f]; ok {
				chosen = append(chosen, c)
			}
		}
	} else {
		chosen = PickShapes(cands, j.PerBucket, j.Seed)
	}
	if j.Limit > 0 && len(chosen) > j.Limit {
		chosen = chosen[:j.Limit]
	}
	names := make([]string, len(chosen))
	for i, c := range chosen {
		names[i] = c.Name
		e.btfIDs[c.Name] = c.BTFID
	}
	scan.Chosen = names
	// One kallsyms pass for every chosen function's address.
	if err := e.readSyms(names); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	sysctls := readSysctls()
	scan.Millis = time.Since(t0).Milliseconds()
	if err := emit(guestapi.KindShapeScan, scan); err != nil {
		return err
	}
	idx := 0
	for _, c := range chosen {
		for _, m := range mixes {
			sh := guestapi.Shape{Index: idx, Name: guestapi.ShapeName(c.Name, m), Func: c.Name, BTFID: c.BTFID,
				Proto: c.Proto.String(), Bucket: c.Bucket.String(), Mix: m, ErrorInject: c.ErrorInject,
				Progs: guestapi.ShapeMixes[m]}
			if err := emit(guestapi.KindCase, guestapi.CaseStart{Index: idx, Name: sh.Name}); err != nil {
				return err
			}
			if err := emit(guestapi.KindShape, sh); err != nil {
				return err
			}
			if err := e.runShape(sh, sysctls, emit); err != nil {
				if eerr := emit(guestapi.KindCaseError, guestapi.CaseError{Index: idx, Name: sh.Name, Message: err.Error()}); eerr != nil {
					return eerr
				}
			}
			idx++
		}
	}
	if j.Multi > 0 {
		return e.runMultiShape(j, idx, chosen, cands, sysctls, emit)
	}
	return nil
}

// runMultiShape runs the multi-link shape: one fsession.multi program
// with a session cookie and bpf_get_func_ip linked to j.Multi functions
// at once, every touched image captured, then the link closed. The
// functions are the chosen ones, then further candidates, each of which
// a single fsession program with the same body linked to alone first.
func (e *env) runMultiShape(j guestapi.ShapeJob, idx int, chosen, cands []ShapeCandidate, sysctls map[string]string, emit func(string, any) error) error {
	t0 := time.Now()
	seen := map[string]bool{}
	var order []ShapeCandidate
	for _, c := range append(append([]ShapeCandidate{}, chosen...), PickShapes(cands, len(cands), j.Seed+1)...) {
		if !seen[c.Name] {
			seen[c.Name] = true
			order = append(order, c)
		}
	}
	single := guestapi.Prog{Name: "probe", Kind: "fsession", Cookie: true, IP: true}
	var funcs []ShapeCandidate
	for tried, c := range order {
		if len(funcs) == j.Multi || tried == 4*j.Multi {
			break
		}
		ps := &progState{p: single, fd: -1}
		s := guestapi.Step{Errno: "ok"}
		e.attachShape(ps, []uint32{c.BTFID}, &s)
		for _, l := range ps.links {
			unix.Close(l)
		}
		if ps.fd >= 0 {
			unix.Close(ps.fd)
		}
		if s.Errno == "ok" {
			funcs = append(funcs, c)
		}
	}
	if len(funcs) == 0 {
		return errors.New("multi shape: no candidate function takes an fsession program")
	}
	var names []string
	for _, c := range funcs {
		names = append(names, c.Name)
		e.btfIDs[c.Name] = c.BTFID
	}
	if err := e.readSyms(names); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	sh := guestapi.Shape{Index: idx, Name: guestapi.MultiShapeName(len(funcs)), Func: funcs[0].Name, BTFID: funcs[0].BTFID,
		Proto: funcs[0].Proto.String(), Bucket: "multi", Mix: guestapi.MultiShapeMix, Progs: guestapi.MultiShapeProgs}
	for _, c := range funcs {
		sh.Funcs = append(sh.Funcs, guestapi.ShapeFunc{Func: c.Name, BTFID: c.BTFID, Proto: c.Proto.String(), ErrorInject: c.ErrorInject})
	}
	if err := emit(guestapi.KindCase, guestapi.CaseStart{Index: idx, Name: sh.Name}); err != nil {
		return err
	}
	if err := emit(guestapi.KindShape, sh); err != nil {
		return err
	}
	if err := emit(guestapi.KindStart, e.shapeStart(sh, sysctls)); err != nil {
		return err
	}
	ps := &progState{p: guestapi.MultiShapeProgs[0], fd: -1}
	all := map[string]*progState{ps.p.Name: ps}
	defer func() {
		for _, l := range ps.links {
			unix.Close(l)
		}
		if ps.fd >= 0 {
			unix.Close(ps.fd)
		}
	}()
	ts := time.Now()
	s := guestapi.Step{Step: 0, Op: "attach", Prog: ps.p.Name, Line: 1, Errno: "ok", Attached: []string{}}
	ids := make([]uint32, len(funcs))
	for i, c := range funcs {
		ids[i] = c.BTFID
	}
	e.attachShape(ps, ids, &s)
	if s.Errno == "ok" {
		s.Attached = []string{ps.p.Name}
	}
	s.ProgID, s.Millis = ps.id, time.Since(ts).Milliseconds()
	if err := emit(guestapi.KindStep, s); err != nil {
		return err
	}
	if s.Errno != "ok" {
		return emit(guestapi.KindJobDone, guestapi.JobDone{Steps: 1, Millis: time.Since(t0).Milliseconds()})
	}
	for _, c := range funcs {
		capt := e.capture(0, captureTarget{name: c.Name, key: vmlinuxTrampKeyBase + uint64(c.BTFID), addr: e.syms[c.Name]}, []*progState{ps}, all)
		if err := emit(guestapi.KindCapture, capt); err != nil {
			return err
		}
	}
	ts = time.Now()
	d := guestapi.Step{Step: 1, Op: "detach", Prog: ps.p.Name, Line: 2, Errno: "ok", ProgID: ps.id, Attached: []string{}}
	if err := unix.Close(ps.links[0]); err != nil {
		d.Errno, d.Stage = ErrnoName(err), "detach"
	}
	ps.links = nil
	d.Millis = time.Since(ts).Milliseconds()
	if err := emit(guestapi.KindStep, d); err != nil {
		return err
	}
	return emit(guestapi.KindJobDone, guestapi.JobDone{Steps: 2, Millis: time.Since(t0).Milliseconds()})
}

func readSysctls() map[string]string {
	out := map[string]string{}
	for _, s := range []string{"net/core/bpf_jit_enable", "net/core/bpf_jit_harden", "net/core/bpf_jit_kallsyms", "kernel/kptr_restrict"} {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			out[s] = err.Error()
		} else {
			out[s] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// shapeProg is a trivial program for p: it calls bpf_get_func_ip (IP) and
// bpf_session_cookie (Cookie) when asked, then returns p.Returns.
func shapeProg(p guestapi.Prog, cookieID uint32) (asm.Instructions, error) {
	in := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	if p.IP {
		in = append(in, asm.Mov.Reg(asm.R1, asm.R6), asm.FnGetFuncIp.Call())
	}
	if p.Cookie {
		if cookieID == 0 {
			return nil, errors.New("no BTF id for bpf_session_cookie")
		}
		in = append(in, asm.Mov.Reg(asm.R1, asm.R6), kfuncCall(cookieID))
	}
	return append(in, movImm64(asm.R0, p.Returns), asm.Return()), nil
}

// shapeVerifierTail is how much of a failed load's verifier log a shape
// keeps (the verdict is at the end).
const shapeVerifierTail = 512

// shapeStart is a shape's start record: the ids and addresses of its
// function (a multi shape's: all of them), the helpers and the probes.
func (e *env) shapeStart(sh guestapi.Shape, sysctls map[string]string) guestapi.Start {
	st := guestapi.Start{
		Release: e.release, Machine: e.machine, Target: sh.Func,
		BTFIDs:            map[string]uint32{sh.Func: sh.BTFID},
		TrampolineKey:     vmlinuxTrampKeyBase + uint64(sh.BTFID),
		FsessionSupported: e.fsessProbe == "ok", FsessionProbe: e.fsessProbe,
		TracingMultiProbe: e.multiProbe,
		Symbols:           map[string]uint64{}, Sysctls: sysctls, InitMillis: e.initMillis, Errors: e.errs,
	}
	for _, n := range []string{"bpf_session_cookie", "bpf_session_is_return"} {
		st.BTFIDs[n] = e.btfIDs[n]
	}
	names := append([]string{}, HelperSymbols...)
	names = append(names, sh.Func)
	for _, f := range sh.Funcs {
		st.BTFIDs[f.Func] = f.BTFID
		names = append(names, f.Func)
	}
	for _, n := range names {
		if a, ok := e.syms[n]; ok {
			st.Symbols[n] = a
		}
	}
	st.Padding = e.padding(st.Symbols)
	return st
}

func (e *env) runShape(sh guestapi.Shape, sysctls map[string]string, emit func(string, any) error) error {
	t0 := time.Now()
	if err := emit(guestapi.KindStart, e.shapeStart(sh, sysctls)); err != nil {
		return err
	}
	all := map[string]*progState{}
	var order []*progState
	defer func() {
		for _, ps := range all {
			for _, l := range ps.links {
				unix.Close(l)
			}
			if ps.fd >= 0 {
				unix.Close(ps.fd)
			}
		}
	}()
	attached := func() []string {
		out := []string{}
		for _, ps := range order {
			out = append(out, ps.p.Name)
		}
		return out
	}
	step := 0
	for i, p := range sh.Progs {
		ts := time.Now()
		ps := &progState{p: p, index: i, fd: -1}
		all[p.Name] = ps
		s := guestapi.Step{Step: step, Op: "attach", Prog: p.Name, Line: step + 1, Errno: "ok"}
		e.attachShape(ps, []uint32{sh.BTFID}, &s)
		if s.Errno == "ok" {
			order = append(order, ps)
		}
		s.ProgID, s.Attached, s.Millis = ps.id, attached(), time.Since(ts).Milliseconds()
		if err := emit(guestapi.KindStep, s); err != nil {
			return err
		}
		step++
	}
	if len(order) > 0 {
		c := e.capture(step-1, captureTarget{name: sh.Func, key: vmlinuxTrampKeyBase + uint64(sh.BTFID), addr: e.syms[sh.Func]}, order, all)
		if err := emit(guestapi.KindCapture, c); err != nil {
			return err
		}
	}
	for len(order) > 0 {
		ts := time.Now()
		ps := order[len(order)-1]
		order = order[:len(order)-1]
		s := guestapi.Step{Step: step, Op: "detach", Prog: ps.p.Name, Line: step + 1, Errno: "ok", ProgID: ps.id}
		l := ps.links[len(ps.links)-1]
		ps.links = ps.links[:len(ps.links)-1]
		if err := unix.Close(l); err != nil {
			s.Errno, s.Stage = ErrnoName(err), "detach"
		}
		s.Attached, s.Millis = attached(), time.Since(ts).Milliseconds()
		if err := emit(guestapi.KindStep, s); err != nil {
			return err
		}
		step++
	}
	return emit(guestapi.KindJobDone, guestapi.JobDone{Steps: step, Millis: time.Since(t0).Milliseconds()})
}

// attachShape loads ps's trivial program and links it to the functions
// with BTF ids ids: a single program to ids[0], a multi program (loaded
// for no function) to all of them with one multi link.
func (e *env) attachShape(ps *progState, ids []uint32, s *guestapi.Step) {
	progType, attachType, err := attachTypeOf(ps.p.Kind)
	if err == nil && progType != progTypeTracing {
		err = fmt.Errorf("%s is not a tracing program", ps.p.Kind)
	}
	multi := strings.HasSuffix(ps.p.Kind, ".multi")
	if err == nil && (len(ids) == 0 || !multi && len(ids) != 1) {
		err = fmt.Errorf("%s program on %d functions", ps.p.Kind, len(ids))
	}
	var raw []byte
	if err == nil {
		var in asm.Instructions
		if in, err = shapeProg(ps.p, e.btfIDs["bpf_session_cookie"]); err == nil {
			raw, err = marshalInsns(in)
		}
	}
	if err != nil {
		s.Errno, s.Stage, s.Error = "EINVAL", "load", err.Error()
		return
	}
	var btfID uint32
	if !multi {
		btfID = ids[0]
	}
	fd, log, err := loadProg(loadSpec{name: ps.p.Name, progType: progType, attachType: attachType, btfID: btfID, insns: raw})
	if err != nil {
		if len(log) > shapeVerifierTail {
			log = "..." + log[len(log)-shapeVerifierTail:]
		}
		s.Errno, s.Stage, s.VerifierLog = ErrnoName(err), "load", log
		return
	}
	ps.fd, s.Loaded = fd, true
	if info, err := getProgInfo(fd); err == nil {
		ps.id = info.ID
	}
	var lfd int
	if multi {
		lfd, err = linkCreateTracingMulti(fd, attachType, ids, nil)
	} else {
		lfd, err = linkCreateTracing(fd, attachType, 0)
	}
	if err != nil {
		s.Errno, s.Stage = ErrnoName(err), "attach"
		return
	}
	ps.links = append(ps.links, lfd)
}
