package cases

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bpftramp/tramp/trampoline"
)

// KernelsAll is the kernel line's word for every build, also those
// whose facts refuse one of the case's program kinds: the case then
// checks the refusal (for example fsession before 7.0).
const KernelsAll = "all"

// Profiles gives the kernel profiles the case applies to: those it names,
// every profile for kernel all, or else every profile that supports all
// of its program kinds.
func (c *Case) Profiles() []*trampoline.Profile {
	var out []*trampoline.Profile
	if c.AllKernels() {
		return trampoline.Profiles()
	}
	if len(c.Kernels) > 0 {
		for _, n := range c.Kernels {
			p, _ := trampoline.LookupProfile(n) // validated by the parser
			out = append(out, p)
		}
		return out
	}
	for _, p := range trampoline.Profiles() {
		ok := true
		for _, pr := range c.Progs {
			if !p.Supports(pr.Kind) {
				ok = false
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// Combo is one table profile and arch a case applies to.
type Combo struct {
	Profile *trampoline.Profile
	Arch    *trampoline.Arch
}

// Combos gives every table profile × arch the case applies to: Profiles
// × ArchList, less the pairs AppliesTo refuses (a build without the JIT
// on an arch the case does not name).
func (c *Case) Combos() []Combo {
	var out []Combo
	for _, p := range c.Profiles() {
		for _, a := range c.ArchList() {
			if c.AppliesTo(p, a) {
				out = append(out, Combo{p, a})
			}
		}
	}
	return out
}

// AllKernels says whether the case's kernel line is kernel all.
func (c *Case) AllKernels() bool { return len(c.Kernels) == 1 && c.Kernels[0] == KernelsAll }

// AppliesTo says whether the case applies to a profile on arch a: one
// it names, any for kernel all, or, when it names none, any profile that
// supports all its program kinds (also a profile made from a kernel's
// facts). A build without the BPF JIT on a (Debian's s390x) runs only the
// cases written for a, which name it: every other case would only be
// refused there.
func (c *Case) AppliesTo(p *trampoline.Profile, a *trampoline.Arch) bool {
	if !p.HasJIT(a) && !slices.Contains(c.Arches, a.Name) || len(p.Arches) > 0 && !slices.Contains(p.Arches, a.Name) {
		return false
	}
	if c.needsSubprogTailcalls() && !p.SubprogTailcalls(a) {
		return false
	}
	if c.AllKernels() {
		return true
	}
	if len(c.Kernels) > 0 {
		for _, n := range c.Kernels {
			if n == p.Name {
				return true
			}
		}
		return false
	}
	for _, pr := range c.Progs {
		if !p.Supports(pr.Kind) {
			return false
		}
	}
	return true
}

// ArchList gives the architectures the case applies to: those it names,
// or the default ones (trampoline.DefaultArches), less those where its
// target cannot exist in any build: a BPF program that mixes tail calls
// and bpf-to-bpf calls needs the JIT's subprogram tail calls (AppliesTo
// asks the build).
func (c *Case) ArchList() []*trampoline.Arch {
	names := c.Arches
	if len(names) == 0 {
		names = trampoline.DefaultArches()
	}
	var out []*trampoline.Arch
	for _, n := range names {
		a, _ := trampoline.LookupArch(n) // validated by the parser
		if c.needsSubprogTailcalls() && !a.MaySubprogTailcalls() {
			continue
		}
		out = append(out, a)
	}
	return out
}

// needsSubprogTailcalls: some target is a BPF program whose tail call
// sits in a subprogram, or a global subprogram that tail-calls.
func (c *Case) needsSubprogTailcalls() bool {
	for _, t := range c.Targets() {
		at := t.Attrs
		if at.BPFProg && at.TailCallReachable && (at.TailCallViaSubprog || at.GlobalSubprog) {
			return true
		}
	}
	return false
}

// Outcome is what one attach or detach step did in the model, and the
// trampoline's state after it.
type Outcome struct {
	Op StepOp `json:"op"`
	// Step is the step's index in the case (run steps count too).
	Step   int    `json:"step"`
	Line   int    `json:"line"`
	Prog   string `json:"prog"`
	Result string `json:"result"`
	// Stage and Reason explain a refusal (load or attach).
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Expect is the case's expectation, if it has one.
	Expect string `json:"expect,omitempty"`
	// Funcs and Cookies are a multi attach's functions and cookies.
	Funcs   []string           `json:"on,omitempty"`
	Cookies []trampoline.Hex64 `json:"link_cookies,omitempty"`
	// Lists are the three lists of the (first) target's trampoline in
	// run order (newest attach first).
	Lists    map[string][]string `json:"lists"`
	Freplace string              `json:"freplace,omitempty"`
	Flags    trampoline.Flags    `json:"flags"`
	Slots    int                 `json:"slots"`
	MaxSlots int                 `json:"max_slots"`
	// Functions is every target's trampoline after the step, in a case
	// with several targets (nil in a single-target case, whose one
	// trampoline the fields above show).
	Functions map[string]*FuncState `json:"functions,omitempty"`
	// Plan is the generator's input after the step, when an image exists
	// (the first target's: Plans[Target]).
	Plan *trampoline.Plan `json:"-"`
	// Plans are every target's plans (those with an image), by function.
	Plans map[string]*trampoline.Plan `json:"-"`
}

// FuncState is one function's trampoline after a step.
type FuncState struct {
	Lists    map[string][]string `json:"lists"`
	Freplace string              `json:"freplace,omitempty"`
	Flags    trampoline.Flags    `json:"flags"`
	Slots    int                 `json:"slots"`
}

// stateOf reads a trampoline's lists, extension, flags and slots.
func stateOf(tr *trampoline.Trampoline) *FuncState {
	fs := &FuncState{Lists: map[string][]string{}, Flags: tr.Flags(), Slots: tr.SlotsUsed()}
	for _, l := range trampoline.Lists() {
		names := []string{}
		for _, pr := range tr.ListProgs(l) {
			names = append(names, pr.Name)
		}
		fs.Lists[l.String()] = names
	}
	if e := tr.Extension(); e != nil {
		fs.Freplace = e.Name
	}
	return fs
}

// Agrees says whether the outcome meets the case's expectation (true when
// there is none).
func (o *Outcome) Agrees() bool { return o.Expect == "" || o.Expect == o.Result }

// Result is a replay of one case on one profile and architecture.
type Result struct {
	Case   string    `json:"case"`
	Kernel string    `json:"kernel"`
	Arch   string    `json:"arch"`
	Target string    `json:"target"`
	Proto  string    `json:"prototype"`
	Ops    []Outcome `json:"ops"`
	// Final is the (first) target's trampoline after the last step;
	// Model holds every target's.
	Final *trampoline.Trampoline `json:"-"`
	Model *trampoline.Kernel     `json:"-"`
}

// Disagreements lists the outcomes that contradict the case's expect.
func (r *Result) Disagreements() []Outcome {
	var out []Outcome
	for _, o := range r.Ops {
		if !o.Agrees() {
			out = append(out, o)
		}
	}
	return out
}

// ErrReplay marks a case that cannot be replayed as written (for example
// a detach of a program with no link).
var ErrReplay = errors.New("case cannot be replayed")

// Replay runs the case's attach and detach steps against the model for
// one profile and architecture. Run steps do not change the model and are
// left out. sizeFunc, when not nil, is the architecture's image sizer.
func Replay(c *Case, p *trampoline.Profile, a *trampoline.Arch, sizeFunc func(*trampoline.Plan) (int, error)) (*Result, error) {
	return ReplayWith(c, p, a, ReplayOptions{SizeFunc: sizeFunc, Through: -1})
}

// ReplayOptions change how ReplayWith runs a case.
type ReplayOptions struct {
	// Target, when set, replaces the case's target: the same function
	// with the ids a real boot gave it (BTF id, object or program id).
	Target *trampoline.Target
	// Functions, when set, replace targets by function name in the same
	// way (the further targets of a case with several).
	Functions map[string]trampoline.Target
	// SizeFunc is the architecture's image sizer (nil: none).
	SizeFunc func(*trampoline.Plan) (int, error)
	// Through stops the replay after the step of this index into
	// c.Steps; negative: every step.
	Through int
	// Lenient records a step the model cannot take (a detach of a
	// program with no link, a model error) as an outcome with Result
	// ResultError instead of ending the replay: for comparing a real
	// kernel's steps, where such a step is a disagreement to report.
	Lenient bool
}

// ResultError is a lenient replay's result for a step the model could
// not take; the outcome's Reason says why.
const ResultError = "error"

// ReplayWith is Replay with options: the one replay of a case's steps on
// the model that every caller builds on.
func ReplayWith(c *Case, p *trampoline.Profile, a *trampoline.Arch, opt ReplayOptions) (*Result, error) {
	targets := c.Targets()
	for i, t := range targets {
		if r, ok := opt.Functions[t.Name]; ok {
			targets[i] = r
		}
	}
	if opt.Target != nil {
		targets[0] = *opt.Target
	}
	k := trampoline.NewKernel(p, a, targets, opt.SizeFunc)
	tr := k.Trampoline(targets[0].Name)
	res := &Result{Case: c.Name, Kernel: p.Name, Arch: a.Name, Target: targets[0].Name,
		Proto: targets[0].Proto.String(), Final: tr, Model: k}
	links := map[*trampoline.Prog]*trampoline.Link{}
	multis := map[*trampoline.Prog]*trampoline.MultiLink{}
	for i, st := range c.Steps {
		if opt.Through >= 0 && i > opt.Through {
			break
		}
		if st.Op == OpRun {
			continue
		}
		o := Outcome{Op: st.Op, Step: i, Line: st.Line, Prog: st.Prog.Name, Expect: st.Expect, Result: "ok", Funcs: st.Funcs}
		for _, ck := range st.Cookies {
			o.Cookies = append(o.Cookies, trampoline.Hex64(ck))
		}
		multi := st.Prog.Kind.Multi()
		switch st.Op {
		case OpAttach:
			var err error
			if multi {
				var ml *trampoline.MultiLink
				if ml, err = k.AttachMulti(st.Prog, st.Funcs, st.Cookies); err == nil {
					multis[st.Prog] = ml
				}
			} else {
				var l *trampoline.Link
				// A second successful link of one program to one function
				// cannot happen in the kernel (EBUSY), and a program is
				// loaded for one function, so one link per program suffices.
				if l, err = k.Trampoline(c.FuncOf(st.Prog)).Attach(st.Prog); err == nil {
					links[st.Prog] = l
				}
			}
			var kerr *trampoline.Error
			switch {
			case err == nil:
			case errors.As(err, &kerr):
				o.Result, o.Stage, o.Reason = kerr.Errno.String(), string(kerr.Stage), kerr.Msg
			case opt.Lenient:
				o.Result, o.Reason = ResultError, err.Error()
			default:
				return nil, fmt.Errorf("%s:%d: attach %s: %w", c.File, st.Line, st.Prog.Name, err)
			}
		case OpDetach:
			l, ml := links[st.Prog], multis[st.Prog]
			switch {
			case l == nil && ml == nil && opt.Lenient:
				o.Result, o.Reason = ResultError, "the model has no link"
			case l == nil && ml == nil:
				return nil, fmt.Errorf("%s:%d: detach %s: %w: the program has no link here (never attached, its attach failed, or it was detached already)",
					c.File, st.Line, st.Prog.Name, ErrReplay)
			default:
				var err error
				if ml != nil {
					err = k.DetachMulti(ml)
				} else {
					err = k.Trampoline(c.FuncOf(st.Prog)).Detach(l)
				}
				if err != nil {
					if !opt.Lenient {
						return nil, fmt.Errorf("%s:%d: %w", c.File, st.Line, err)
					}
					o.Result, o.Reason = ResultError, err.Error()
				}
				delete(links, st.Prog)
				delete(multis, st.Prog)
			}
		}
		fs := stateOf(tr)
		o.Lists, o.Freplace, o.Flags, o.Slots = fs.Lists, fs.Freplace, fs.Flags, fs.Slots
		o.MaxSlots = p.SlotLimit(a)
		o.Plans = map[string]*trampoline.Plan{}
		for _, f := range k.Functions() {
			ft := k.Trampoline(f)
			if c.MultiTarget() {
				if o.Functions == nil {
					o.Functions = map[string]*FuncState{}
				}
				o.Functions[f] = stateOf(ft)
			}
			if ft.HasImage() {
				o.Plans[f] = ft.Plan()
			}
		}
		o.Plan = o.Plans[targets[0].Name]
		res.Ops = append(res.Ops, o)
	}
	return res, nil
}
