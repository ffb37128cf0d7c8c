package trampoline

import (
	"fmt"
	"strings"
)

// PageSize is the largest trampoline image the kernel accepts
// (bpf_trampoline_update: size > PAGE_SIZE is E2BIG).
const PageSize = 4096

// CookieValueFor is the value the fsession program with index i of a case
// writes into its session cookie at entry (Prog.Cookie): the guest's
// observer programs write it, the emulator's stubs too, and both check
// that the exit run reads it back.
func CookieValueFor(i int) uint64 { return 0xC0DE000000000000 | uint64(i)<<8 | 0x5E }

// Prog is a BPF program as a case declares it.
type Prog struct {
	Name string
	Kind Kind
	// Cookie: the program calls bpf_session_cookie (sets
	// prog->call_session_cookie).
	Cookie bool
	// IP: the program calls bpf_get_func_ip (sets prog->call_get_func_ip).
	IP bool
	// Sleepable: loaded with BPF_F_SLEEPABLE.
	Sleepable bool
	// LinkCookie is link_create.tracing.cookie (bpf_get_attach_cookie).
	LinkCookie uint64
	// Returns is the program's return value.
	Returns int64
}

// Link is one successful attach: the kernel's bpf_tracing_link. An
// fsession link owns two nodes, one on FENTRY and one on FEXIT.
type Link struct {
	Prog *Prog
}

// node is a struct bpf_tramp_node: a link's place on one list.
type node struct {
	link *Link
	exit bool // the fexit node of an fsession link
	// cookie is what bpf_get_attach_cookie returns on this node: the
	// link's cookie, or a multi link's cookie for this function.
	cookie uint64
}

// Trampoline models one struct bpf_trampoline: the state the kernel keeps
// for one attach target.
type Trampoline struct {
	Profile *Profile
	Arch    *Arch
	Target  Target
	// SizeFunc, when set, gives the size the architecture would allocate
	// for a plan (arch_bpf_trampoline_size). An update whose size exceeds
	// PageSize fails with E2BIG and is rolled back, as in the kernel. When
	// nil the model does not check the size.
	SizeFunc func(*Plan) (int, error)

	lists     [numLists][]*node // each head (newest attach) first
	extension *Link             // tr->extension_prog
	flags     Flags             // tr->flags
	image     bool              // tr->cur_image != NULL
	loaded    map[*Prog]bool    // programs that passed the verifier
	// linked: programs that were linked once (their load-time target,
	// prog->aux->dst_trampoline, is used up).
	linked map[*Prog]bool
}

// New returns an empty trampoline for target on the given kernel and arch.
func New(p *Profile, a *Arch, target Target) *Trampoline {
	return &Trampoline{Profile: p, Arch: a, Target: target, loaded: map[*Prog]bool{}, linked: map[*Prog]bool{}}
}

// Load applies the checks the kernel makes when the program is loaded
// (BPF_PROG_LOAD): bpf_prog_load_check_attach, check_attach_btf_id with
// bpf_check_attach_target, the kfunc filters and the return-range check,
// in that order. A program that passed is remembered; Attach loads a
// program that was not loaded yet.
func (t *Trampoline) Load(p *Prog) error {
	if t.loaded[p] {
		return nil
	}
	if err := t.verify(p); err != nil {
		return err
	}
	t.loaded[p] = true
	// check_attach_btf_id: a tail-call-reachable target program marks its
	// trampoline at verification time.
	if t.Target.Attrs.BPFProg && t.Target.Attrs.TailCallReachable {
		t.flags |= FlagTailCallCtx
	}
	return nil
}

func (t *Trampoline) verify(p *Prog) error {
	// No JIT (Debian's s390x): add_subprog_and_kfunc, first in bpf_check,
	// refuses a kfunc call, and a session program always calls
	// bpf_session_is_return. It comes before the attach type is looked
	// at: 6.12.107 s390x says ENOTSUPP for fsession too (measured).
	if !t.Profile.HasJIT(t.Arch) && (p.Kind.Session() || p.Cookie) {
		return loadErr(ENOTSUPP, "JIT is required for calling kernel function")
	}
	// Attach type 58 is unknown before 7.0: bpf_check fails it with
	// EINVAL in check_attach_btf_id (the log says only "processed 0
	// insns", measured on 6.12.117 and 6.18.15).
	if !t.Profile.Supports(p.Kind) {
		return loadErr(EINVAL, "kernel %s has no attach type %s", t.Profile.Version, p.Kind)
	}
	if err := t.checkTarget(p); err != nil {
		return err
	}
	// check_attach_btf_id: with no JIT, bpf_trampoline_get finds no
	// trampoline for the target and the load fails with ENOMEM (the
	// kernel logs nothing past "processed 0 insns").
	if !t.Profile.HasJIT(t.Arch) && p.Kind.Base() != KindFreplace {
		return loadErr(ENOMEM, "no trampoline without the BPF JIT (%s build)", t.Arch.Name)
	}
	return checkBody(p)
}

// checkTarget is bpf_check_attach_target and the target checks of
// check_attach_btf_id, in their order, for p's kind (a multi kind is
// checked as its base kind on each of its functions).
func (t *Trampoline) checkTarget(p *Prog) error {
	tg := &t.Target
	kind := p.Kind.Base()
	if tg.Attrs.BPFProg {
		if p.Sleepable {
			return loadErr(EINVAL, "%s is not sleepable (a BPF-program target)", tg.Name)
		}
	} else if kind == KindFreplace {
		return loadErr(EINVAL, "Cannot replace kernel functions")
	}
	if kind == KindFsession && !t.Profile.FsessionJIT(t.Arch) {
		return loadErr(EOPNOTSUPP, "JIT does not support fsession (%s)", t.Arch.Name)
	}
	if err := checkPrototype(tg); err != nil {
		return err
	}
	if tg.Proto.Ret.Size > 8 && kind.usesTrampolineRetval() {
		return loadErr(EOPNOTSUPP, "Attach to function %s with a >8 byte return value is not supported for this attach type", tg.Name)
	}
	// check_attach_sleepable / check_attach_modify_return: with error
	// injection built in, ALLOW_ERROR_INJECTION functions; without it, the
	// arch's syscall wrappers.
	injectable := tg.Attrs.ErrorInject
	if !t.Profile.ErrorInjection {
		pre := t.Profile.syscallPrefix(t.Arch)
		injectable = pre != "" && strings.HasPrefix(tg.Name, pre)
	}
	if p.Sleepable {
		if tg.Attrs.BPFProg || !(injectable || tg.Attrs.FmodRetSleepable) {
			return loadErr(EINVAL, "%s is not sleepable", tg.Name)
		}
	} else if kind == KindFmodRet {
		if tg.Attrs.BPFProg {
			return loadErr(EINVAL, "can't modify return codes of BPF programs")
		}
		if !(tg.Attrs.FmodRet || tg.Attrs.FmodRetSleepable || injectable || strings.HasPrefix(tg.Name, "security_")) {
			return loadErr(EINVAL, "%s() is not modifiable", tg.Name)
		}
	}
	// check_attach_btf_id after the target checks.
	if kind != KindFreplace && tg.Attrs.Deny {
		return loadErr(EINVAL, "Attaching tracing programs to function '%s' is rejected", tg.Name)
	}
	if (kind == KindFexit || kind == KindFsession || kind == KindFmodRet) && tg.Attrs.NoReturn {
		return loadErr(EINVAL, "Attaching fexit/fsession/fmod_ret to __noreturn function '%s' is rejected", tg.Name)
	}
	return nil
}

// checkBody is the verification of the program's body: bpf_session_cookie
// is allowed only for session programs (bpf_session_filter), and
// fentry/fexit/fsession (multi or not) must return 0 (the verifier's
// return range for them is [0, 0]).
func checkBody(p *Prog) error {
	if p.Cookie && !p.Kind.Session() {
		return loadErr(EACCES, "calling kernel function bpf_session_cookie is not allowed for %s", p.Kind)
	}
	if b := p.Kind.Base(); p.Returns != 0 && (b == KindFentry || b == KindFexit || b == KindFsession) {
		return loadErr(EINVAL, "%s programs must return 0 (returns=%d)", p.Kind, p.Returns)
	}
	return nil
}

// checkPrototype models btf_distill_func_proto's refusals.
func checkPrototype(tg *Target) error {
	if n := len(tg.Proto.Args); n > MaxFuncArgs {
		return loadErr(EINVAL, "The function %s has %d arguments. Too many.", tg.Name, n)
	}
	if tg.Proto.Ret.Struct {
		return loadErr(EINVAL, "The function %s return type %s is unsupported.", tg.Name, tg.Proto.Ret)
	}
	for i, a := range tg.Proto.Args {
		if a.Size > 16 {
			return loadErr(EINVAL, "The function %s arg%d type %s is unsupported.", tg.Name, i, a)
		}
	}
	return nil
}

// MaxFuncArgs is MAX_BPF_FUNC_ARGS.
const MaxFuncArgs = 12

// Attach links a program (BPF_LINK_CREATE), loading it first if needed.
// It models bpf_tracing_prog_attach and __bpf_trampoline_link_prog with
// bpf_trampoline_add_prog and bpf_trampoline_update, including the
// rollback when the update fails.
func (t *Trampoline) Attach(p *Prog) (*Link, error) {
	if p.Kind.Multi() {
		return nil, fmt.Errorf("attach %s: a %s program attaches through a multi link (Kernel.AttachMulti)", p.Name, p.Kind)
	}
	if err := t.Load(p); err != nil {
		return nil, err
	}
	// bpf_tracing_prog_attach: the first successful link uses up the
	// target the program was loaded for. A later link without a target
	// fd (the only kind a case makes) finds the trampoline again through
	// attach_btf, which a program loaded with attach_prog_fd does not
	// have (extensions never re-attach that way).
	if t.Target.Attrs.BPFProg && t.linked[p] {
		return nil, attachErr(EINVAL, "%s was linked before: re-attaching to a BPF program needs target_fd", p.Name)
	}
	if err := t.extensionBusy(); err != nil {
		return nil, err
	}
	l := &Link{Prog: p}
	if p.Kind == KindFreplace {
		cnt := t.slotsUsed()
		if cnt != 0 {
			return nil, attachErr(EBUSY, "cannot attach an extension while %d fentry/fexit/fmod_ret links are in use", cnt)
		}
		t.extension = l
		t.linked[p] = true
		return l, nil
	}
	if err := t.link(l, p.LinkCookie); err != nil {
		return nil, err
	}
	t.linked[p] = true
	return l, nil
}

// extensionBusy is __bpf_trampoline_link_prog's first refusal: an
// attached extension owns the trampoline.
func (t *Trampoline) extensionBusy() error {
	if t.extension != nil {
		return attachErr(EBUSY, "an extension program (%s) is attached", t.extension.Prog.Name)
	}
	return nil
}

// link puts l's node(s) on their lists and updates the image, rolling
// back on failure: __bpf_trampoline_link_prog after the extension checks,
// for single and multi links alike.
func (t *Trampoline) link(l *Link, cookie uint64) error {
	p := l.Prog
	kind := p.Kind.Base()
	cnt := t.slotsUsed()
	list := kindList(kind)
	if kind == KindFsession {
		cnt++
	}
	if max := t.Profile.SlotLimit(t.Arch); cnt >= max {
		return attachErr(E2BIG, "%d of %d trampoline slots in use, %s needs %d", t.slotsUsed(), max, p.Kind, slotCost(kind))
	}
	for _, n := range t.lists[list] {
		if n.link.Prog == p {
			return attachErr(EBUSY, "program %s is already linked to this trampoline", p.Name)
		}
	}
	t.push(list, &node{link: l, cookie: cookie})
	if kind == KindFsession {
		t.push(ListFexit, &node{link: l, exit: true, cookie: cookie})
	}
	if err := t.update(); err != nil {
		t.remove(l)
		return err
	}
	return nil
}

// Detach closes a link (models __bpf_trampoline_unlink_prog); the kernel
// says this never fails.
func (t *Trampoline) Detach(l *Link) error {
	if l == nil {
		return fmt.Errorf("detach: nil link")
	}
	if t.extension == l {
		t.extension = nil
		return nil
	}
	if !t.remove(l) {
		return fmt.Errorf("detach %s: link is not on this trampoline", l.Prog.Name)
	}
	if err := t.update(); err != nil {
		return fmt.Errorf("detach %s: update failed: %w (the kernel warns here)", l.Prog.Name, err)
	}
	return nil
}

func (t *Trampoline) push(list List, n *node) {
	t.lists[list] = append([]*node{n}, t.lists[list]...)
}

// remove takes every node of l off every list (bpf_trampoline_remove_prog).
func (t *Trampoline) remove(l *Link) bool {
	found := false
	for i := range t.lists {
		out := t.lists[i][:0:0]
		for _, n := range t.lists[i] {
			if n.link == l {
				found = true
				continue
			}
			out = append(out, n)
		}
		t.lists[i] = out
	}
	return found
}

// slotsUsed is the sum of progs_cnt over the three lists.
func (t *Trampoline) slotsUsed() int {
	n := 0
	for _, l := range t.lists {
		n += len(l)
	}
	return n
}

// slotCost is how many of the BPF_MAX_TRAMP_LINKS slots a kind takes.
func slotCost(k Kind) int {
	if k.Session() {
		return 2
	}
	return 1
}

// kindList is bpf_attach_type_to_tramp, with FSESSION resolved to the list
// its entry node goes on.
func kindList(k Kind) List {
	switch k.Base() {
	case KindFexit:
		return ListFexit
	case KindFmodRet:
		return ListModReturn
	}
	return ListFentry
}

// update models bpf_trampoline_update: it recomputes the flags from the
// lists and builds a new image, or unregisters when no program is left.
// On failure the flags are restored and the caller rolls the lists back.
func (t *Trampoline) update() error {
	if t.slotsUsed() == 0 {
		// unregister_fentry; tr->flags keeps its last value.
		t.image = false
		return nil
	}
	// register_fentry: ftrace has no entry for a function it cannot trace.
	if !t.image && t.Target.Attrs.NoTrace {
		return attachErr(EBUSY, "ftrace cannot attach to %s (not traceable): registering the trampoline fails", t.Target.Name)
	}
	orig := t.flags
	f := t.flags & (FlagShareIPModify | FlagTailCallCtx)
	if len(t.lists[ListFexit]) > 0 || len(t.lists[ListModReturn]) > 0 {
		f |= FlagCallOrig | FlagSkipFrame
	} else {
		f |= FlagRestoreRegs
	}
	for _, l := range t.lists {
		for _, n := range l {
			if n.link.Prog.IP {
				f |= FlagIPArg
			}
		}
	}
	if f&FlagCallOrig != 0 {
		if f&FlagShareIPModify != 0 {
			f |= FlagOrigStack | FlagSkipFrame
		} else if t.jmpMode() {
			f &^= FlagSkipFrame
		}
	}
	t.flags = f
	if err := t.checkImage(); err != nil {
		t.flags = orig
		return err
	}
	t.image = true
	return nil
}

// jmpMode: CONFIG_DYNAMIC_FTRACE_WITH_JMP, x86_64 only.
func (t *Trampoline) jmpMode() bool {
	return t.Arch.Name == "x86_64" && t.Profile.X86JmpMode
}

// checkImage applies the refusals of arch_bpf_trampoline_size and the size
// limit.
func (t *Trampoline) checkImage() error {
	plan := t.Plan()
	// x86 __arch_prepare_bpf_trampoline: at most MAX_BPF_FUNC_ARGS slots.
	if t.Arch.Name == "x86_64" && plan.ArgSlots > MaxFuncArgs {
		return attachErr(ENOTSUPP, "x86_64 trampolines take at most %d argument slots, %s needs %d", MaxFuncArgs, t.Target.Name, plan.ArgSlots)
	}
	if t.SizeFunc == nil {
		return nil
	}
	size, err := t.SizeFunc(plan)
	if err != nil {
		return err
	}
	if size > PageSize {
		return attachErr(E2BIG, "trampoline image would be %d bytes, more than a page (%d)", size, PageSize)
	}
	return nil
}

// Flags are the flags of the current image (tr->flags while an image is
// installed; 0 when no program is attached).
func (t *Trampoline) Flags() Flags {
	if !t.image {
		return 0
	}
	return t.flags
}

// HasImage says whether a trampoline image is installed.
func (t *Trampoline) HasImage() bool { return t.image }

// Extension is the attached freplace program, or nil.
func (t *Trampoline) Extension() *Prog {
	if t.extension == nil {
		return nil
	}
	return t.extension.Prog
}

// ListProgs gives the programs on one list in run order (newest first).
func (t *Trampoline) ListProgs(l List) []*Prog {
	var out []*Prog
	for _, n := range t.lists[l] {
		out = append(out, n.link.Prog)
	}
	return out
}

// SlotsUsed is the number of BPF_MAX_TRAMP_LINKS slots taken.
func (t *Trampoline) SlotsUsed() int { return t.slotsUsed() }
