package trampoline

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxTracingMultiCnt is the most functions one tracing multi link may
// name (MAX_TRACING_MULTI_CNT; more is E2BIG).
const MaxTracingMultiCnt = 1 << 20

// Kernel holds the trampolines of one kernel: one per traced function,
// as the kernel's trampoline table keeps them (bpf_trampoline_lookup),
// so that a multi link can put a node on many of them and single links
// on any. Functions are addressed by name.
type Kernel struct {
	Profile *Profile
	Arch    *Arch
	// SizeFunc is handed to every trampoline (see Trampoline.SizeFunc).
	SizeFunc func(*Plan) (int, error)

	tramps map[string]*Trampoline
	order  []string
	loaded map[*Prog]bool // multi programs that passed the verifier
}

// NewKernel returns a kernel with an empty trampoline for each target,
// in the order given.
func NewKernel(p *Profile, a *Arch, targets []Target, sizeFunc func(*Plan) (int, error)) *Kernel {
	k := &Kernel{Profile: p, Arch: a, SizeFunc: sizeFunc, tramps: map[string]*Trampoline{}, loaded: map[*Prog]bool{}}
	for _, t := range targets {
		if _, dup := k.tramps[t.Name]; dup {
			continue
		}
		tr := New(p, a, t)
		tr.SizeFunc = sizeFunc
		k.tramps[t.Name] = tr
		k.order = append(k.order, t.Name)
	}
	return k
}

// Trampoline is the trampoline of the named function, or nil.
func (k *Kernel) Trampoline(name string) *Trampoline { return k.tramps[name] }

// Functions lists the functions in the order they were given.
func (k *Kernel) Functions() []string { return append([]string(nil), k.order...) }

// MultiLink is one tracing multi link: a program on several functions,
// with a cookie per function (bpf_tracing_multi_link). Funcs are in the
// kernel's order (by BTF id where known), Cookies with them.
type MultiLink struct {
	Prog    *Prog
	Funcs   []string
	Cookies []uint64
	links   []*Link // one per linked function, in Funcs order
}

// LoadMulti applies the load-time checks of a multi program
// (BPF_PROG_LOAD with a *_MULTI attach type and no attach_btf_id): the
// attach type must be known, and the body is verified as for the base
// kind, against no particular function.
func (k *Kernel) LoadMulti(p *Prog) error {
	if !p.Kind.Multi() {
		return fmt.Errorf("load %s: %s is not a multi kind", p.Name, p.Kind)
	}
	if k.loaded[p] {
		return nil
	}
	// bpf_prog_load_check_attach: the multi attach types are unknown
	// before 7.2 (and fsession.multi without fsession).
	if !k.Profile.Supports(p.Kind) {
		return loadErr(EINVAL, "kernel %s has no attach type %s", k.Profile.Version, p.Kind)
	}
	if p.Kind.Session() && !k.Profile.FsessionJIT(k.Arch) {
		return loadErr(EOPNOTSUPP, "JIT does not support fsession (%s)", k.Arch.Name)
	}
	if err := checkBody(p); err != nil {
		return err
	}
	k.loaded[p] = true
	return nil
}

// AttachMulti creates a multi link of p on funcs with cookies (nil: every
// cookie 0): BPF_LINK_CREATE with link_create.tracing_multi, modelled on
// bpf_tracing_multi_attach. The link's own checks come first; then the
// ids are sorted (check_dup_ids, which refuses a function named twice);
// then every function is checked as an attach target
// (bpf_check_attach_btf_id_multi); only then is each one linked. When a
// function refuses, the ones linked before it are unlinked again and the
// refusal, which names the function, is the link's errno: all or
// nothing.
func (k *Kernel) AttachMulti(p *Prog, funcs []string, cookies []uint64) (*MultiLink, error) {
	if err := k.CheckMultiLink(p, len(funcs)); err != nil {
		return nil, err
	}
	if cookies != nil && len(cookies) != len(funcs) {
		return nil, fmt.Errorf("multi link of %s: %d cookies for %d functions", p.Name, len(cookies), len(funcs))
	}
	ml := &MultiLink{Prog: p}
	for i, f := range funcs {
		var c uint64
		if cookies != nil {
			c = cookies[i]
		}
		ml.Funcs = append(ml.Funcs, f)
		ml.Cookies = append(ml.Cookies, c)
	}
	k.sortByID(ml)
	for i := 1; i < len(ml.Funcs); i++ {
		if ml.Funcs[i] == ml.Funcs[i-1] {
			return nil, attachErr(EINVAL, "function %s named twice in one multi link", ml.Funcs[i])
		}
	}
	for _, f := range ml.Funcs {
		tr := k.tramps[f]
		if tr == nil {
			return nil, attachErr(ENOENT, "%s: no such function in this kernel", f)
		}
		if err := tr.checkTarget(p); err != nil {
			return nil, inFunction(err, f)
		}
		// bpf_check_attach_btf_id_multi: no ftrace entry for it.
		if tr.Target.Attrs.NoTrace {
			return nil, attachErr(ENOENT, "%s: not traceable (ftrace has no entry for it)", f)
		}
	}
	for i, f := range ml.Funcs {
		if err := k.tramps[f].linkMulti(p, ml.Cookies[i], ml); err != nil {
			k.rollback(ml)
			return nil, err
		}
	}
	return ml, nil
}

// CheckMultiLink applies what a multi link of p on n functions is
// checked for before any function is looked at: the program's load, the
// arch, and the count.
func (k *Kernel) CheckMultiLink(p *Prog, n int) error {
	if err := k.LoadMulti(p); err != nil {
		return err
	}
	// Without CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS (every arch but
	// x86_64) bpf_tracing_multi_attach is a stub.
	if !k.Arch.TracingMulti {
		return attachErr(EOPNOTSUPP, "%s cannot attach tracing multi links (no CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS)", k.Arch.Name)
	}
	switch {
	case n == 0:
		return attachErr(EINVAL, "a multi link needs at least one function (cnt 0)")
	case n > MaxTracingMultiCnt:
		return attachErr(E2BIG, "%d functions, at most %d per multi link", n, MaxTracingMultiCnt)
	}
	return nil
}

// sortByID orders the link's functions by BTF id, cookies with them, as
// check_dup_ids does, where every id is known (a case's known targets
// carry none until a boot gives them; then the case's order stands, with
// duplicates next to each other).
func (k *Kernel) sortByID(ml *MultiLink) {
	// The sort key: the BTF id where every function has one, else where
	// the function first appears in the link.
	rank := map[string]uint64{}
	for i, f := range ml.Funcs {
		if _, ok := rank[f]; !ok {
			rank[f] = uint64(i)
		}
	}
	byID := true
	for _, f := range ml.Funcs {
		if tr := k.tramps[f]; tr == nil || tr.Target.BTFID == 0 {
			byID = false
		}
	}
	if byID {
		for f := range rank {
			rank[f] = uint64(k.tramps[f].Target.BTFID)
		}
	}
	idx := make([]int, len(ml.Funcs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rank[ml.Funcs[idx[a]]] < rank[ml.Funcs[idx[b]]] })
	funcs, cookies := make([]string, len(idx)), make([]uint64, len(idx))
	for i, j := range idx {
		funcs[i], cookies[i] = ml.Funcs[j], ml.Cookies[j]
	}
	ml.Funcs, ml.Cookies = funcs, cookies
}

// linkMulti links one function's node(s) of a multi link (the linking
// loop of bpf_tracing_multi_attach over __bpf_trampoline_link_prog);
// refusals name the function.
func (t *Trampoline) linkMulti(p *Prog, cookie uint64, ml *MultiLink) error {
	name := t.Target.Name
	if err := t.extensionBusy(); err != nil {
		return inFunction(err, name)
	}
	l := &Link{Prog: p}
	if err := t.link(l, cookie); err != nil {
		return inFunction(err, name)
	}
	ml.links = append(ml.links, l)
	return nil
}

// inFunction turns a refusal on one function of a multi link into the
// link's refusal: an attach-stage error whose reason starts with the
// function's name.
func inFunction(err error, fn string) error {
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%s: %w", fn, err)
	}
	msg := e.Msg
	if !strings.HasPrefix(msg, fn+":") {
		msg = fn + ": " + msg
	}
	return &Error{Errno: e.Errno, Stage: StageAttach, Msg: msg}
}

// rollback unlinks what a failed multi attach had linked, newest first.
func (k *Kernel) rollback(ml *MultiLink) {
	for i := len(ml.links) - 1; i >= 0; i-- {
		tr := k.tramps[ml.Funcs[i]]
		tr.remove(ml.links[i])
		_ = tr.update() // an update to fewer programs is not refused
	}
	ml.links = nil
}

// DetachMulti closes a multi link: every function's nodes come off
// (bpf_tracing_multi_link_release).
func (k *Kernel) DetachMulti(ml *MultiLink) error {
	if ml == nil || len(ml.links) == 0 {
		return fmt.Errorf("detach: no multi link")
	}
	var errs []string
	for i, l := range ml.links {
		if err := k.tramps[ml.Funcs[i]].Detach(l); err != nil {
			errs = append(errs, err.Error())
		}
	}
	ml.links = nil
	if errs != nil {
		return fmt.Errorf("detach multi %s: %s", ml.Prog.Name, strings.Join(errs, "; "))
	}
	return nil
}
