package cases

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/bpftramp/tramp/trampoline"
)

// Case is one parsed scenario file.
type Case struct {
	// Name is the file name without directory and extension.
	Name string
	// File is the path the case was read from (for messages).
	File string
	// Kernels and Arches are the profiles and architectures the case
	// names; empty means the defaults (see AppliesTo). Kernels may be
	// the single word KernelsAll.
	Kernels []string
	Arches  []string
	// Target is the case's (first) target function.
	Target trampoline.Target
	// TargetLine is where the target was declared.
	TargetLine int
	// Extra are the further targets of a case with several target
	// lines, in order (nil for a single-target case); ExtraLines are
	// their lines.
	Extra      []trampoline.Target
	ExtraLines []int
	Progs      []*trampoline.Prog
	// On names the function of each single-function program of a case
	// with several targets (prog NAME KIND on=FUNC).
	On    map[string]string
	Steps []Step
}

// Targets lists every target of the case, the first one first.
func (c *Case) Targets() []trampoline.Target {
	return append([]trampoline.Target{c.Target}, c.Extra...)
}

// LookupTarget finds a target of the case by function name.
func (c *Case) LookupTarget(name string) (trampoline.Target, bool) {
	for _, t := range c.Targets() {
		if t.Name == name {
			return t, true
		}
	}
	return trampoline.Target{}, false
}

// MultiTarget says whether the case has several targets.
func (c *Case) MultiTarget() bool { return len(c.Extra) > 0 }

// FuncOf is the function a single-function program attaches to: the one
// its prog line names, else the case's target.
func (c *Case) FuncOf(p *trampoline.Prog) string {
	if f, ok := c.On[p.Name]; ok {
		return f
	}
	return c.Target.Name
}

// TargetLineOf is where the named target was declared (the first
// target's line for a name that is not a target).
func (c *Case) TargetLineOf(name string) int {
	if l := c.targetLine(name); l != 0 {
		return l
	}
	return c.TargetLine
}

// targetLine is where the named target was declared (0: not a target).
func (c *Case) targetLine(name string) int {
	if c.Target.Name == name {
		return c.TargetLine
	}
	for i, t := range c.Extra {
		if t.Name == name {
			return c.ExtraLines[i]
		}
	}
	return 0
}

// StepOp is what a step does.
type StepOp string

// Step operations.
const (
	OpAttach StepOp = "attach"
	OpDetach StepOp = "detach"
	OpRun    StepOp = "run"
)

// Step is one attach, detach or run line.
type Step struct {
	Op   StepOp
	Line int
	// Prog is the program attached or detached.
	Prog *trampoline.Prog
	// Expect is the outcome the case asserts ("ok" or an errno name);
	// empty when the line has no expect.
	Expect string
	// Args are the explicit arguments of a run line (nil: the kernel's own).
	Args []int64
	// Func is the function a run line triggers in a case with several
	// targets ("": the kernel's trigger, which calls each of them).
	Func string
	// Funcs and Cookies are a multi program's attach: the functions
	// (on=, default every target) and their cookies (link-cookies=, nil:
	// every cookie 0).
	Funcs   []string
	Cookies []uint64
}

// Prog finds a declared program by name.
func (c *Case) Prog(name string) *trampoline.Prog {
	for _, p := range c.Progs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Error is a problem in a case file, with its position.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ParseFile reads and parses one case file.
func ParseFile(path string) (*Case, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// token is one whitespace-separated word with its 1-based column.
type token struct {
	text string
	col  int
}

type parser struct {
	file string
	c    *Case
	line int
	// progLines: where each program was declared.
	progLines map[string]int
}

func (p *parser) errf(col int, format string, args ...any) error {
	return &Error{File: p.file, Line: p.line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a case from src; file names it in errors and gives the
// case its name.
func Parse(file string, src []byte) (*Case, error) {
	base := filepath.Base(file)
	c := &Case{Name: strings.TrimSuffix(base, filepath.Ext(base)), File: file}
	p := &parser{file: file, c: c, progLines: map[string]int{}}
	seen := map[string]int{}
	for i, raw := range strings.Split(string(src), "\n") {
		p.line = i + 1
		line := strings.TrimSuffix(raw, "\r")
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		toks, err := p.tokenize(line)
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			continue
		}
		kw := toks[0]
		switch kw.text {
		case "kernel", "arch":
			if prev, ok := seen[kw.text]; ok {
				return nil, p.errf(kw.col, "second %s line (the first is on line %d)", kw.text, prev)
			}
			seen[kw.text] = p.line
		}
		switch kw.text {
		case "kernel":
			err = p.kernel(toks)
		case "arch":
			err = p.arch(toks)
		case "target":
			err = p.target(line, toks)
		case "prog":
			err = p.prog(toks)
		case "attach", "detach":
			err = p.attachDetach(toks)
		case "run":
			err = p.run(toks)
		default:
			err = p.errf(kw.col, "unknown keyword %q: want kernel, arch, target, prog, attach, detach or run", kw.text)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.TargetLine == 0 {
		p.line = 1
		return nil, p.errf(1, "no target line: every case needs one")
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) tokenize(line string) ([]token, error) {
	var toks []token
	start := -1
	for i, r := range line {
		if r > unicode.MaxASCII || (r < ' ' && r != '\t') {
			return nil, p.errf(i+1, "unexpected character %q", r)
		}
		if r == ' ' || r == '\t' {
			if start >= 0 {
				toks = append(toks, token{line[start:i], start + 1})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		toks = append(toks, token{line[start:], start + 1})
	}
	return toks, nil
}

func (p *parser) kernel(toks []token) error {
	if len(toks) < 2 {
		return p.errf(toks[0].col, "kernel needs at least one profile (known: %s)", strings.Join(trampoline.ProfileNames(), ", "))
	}
	for _, t := range toks[1:] {
		if t.text == KernelsAll {
			if len(toks) > 2 {
				return p.errf(t.col, "kernel %s stands alone: it means every build, also one whose facts refuse a program kind of the case", KernelsAll)
			}
			p.c.Kernels = []string{KernelsAll}
			break
		}
		if _, err := trampoline.LookupProfile(t.text); err != nil {
			return p.errf(t.col, "%v", err)
		}
		if contains(p.c.Kernels, t.text) {
			return p.errf(t.col, "profile %s named twice", t.text)
		}
		p.c.Kernels = append(p.c.Kernels, t.text)
	}
	return nil
}

func (p *parser) arch(toks []token) error {
	if len(toks) < 2 {
		return p.errf(toks[0].col, "arch needs at least one architecture (known: %s)", strings.Join(trampoline.ArchNames(), ", "))
	}
	for _, t := range toks[1:] {
		a, err := trampoline.LookupArch(t.text)
		if err != nil {
			return p.errf(t.col, "%v", err)
		}
		if contains(p.c.Arches, a.Name) {
			return p.errf(t.col, "arch %s named twice", a.Name)
		}
		p.c.Arches = append(p.c.Arches, a.Name)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || r == '.'))) {
			return false
		}
	}
	return true
}

// target parses "target NAME" or "target NAME(T, ...) -> R [attrs]". The
// prototype may contain spaces, so it is read from the raw line.
func (p *parser) target(line string, toks []token) error {
	t, err := p.targetDecl(line, toks)
	if err != nil {
		return err
	}
	if prev := p.c.targetLine(t.Name); prev != 0 {
		return p.errf(toks[1].col, "target %s declared twice (first on line %d)", t.Name, prev)
	}
	if p.c.TargetLine == 0 {
		p.c.Target, p.c.TargetLine = t, p.line
		return nil
	}
	p.c.Extra = append(p.c.Extra, t)
	p.c.ExtraLines = append(p.c.ExtraLines, p.line)
	return nil
}

// targetDecl parses one target line.
func (p *parser) targetDecl(line string, toks []token) (trampoline.Target, error) {
	var none trampoline.Target
	if len(toks) < 2 {
		return none, p.errf(toks[0].col, "target needs a function name")
	}
	rest := line[toks[1].col-1:]
	open := strings.IndexByte(rest, '(')
	if open < 0 {
		// A bare name: a known function, perhaps with attributes after it.
		name := toks[1]
		if !isIdent(name.text) {
			return none, p.errf(name.col, "bad function name %q", name.text)
		}
		t, ok := trampoline.KnownTarget(name.text)
		if !ok {
			return none, p.errf(name.col, "tramp does not know the prototype of %s; write it out, e.g. target %s(u64, ptr) -> s32 (known: %s)",
				name.text, name.text, strings.Join(trampoline.KnownTargetNames(), ", "))
		}
		return t, p.targetAttrs(&t, toks[2:])
	}
	base := toks[1].col - 1
	name := strings.TrimSpace(rest[:open])
	if !isIdent(name) {
		return none, p.errf(toks[1].col, "bad function name %q", name)
	}
	closeIdx := strings.IndexByte(rest, ')')
	if closeIdx < open {
		return none, p.errf(base+open+1, "unclosed '(' in prototype")
	}
	t := trampoline.Target{Name: name, ObjID: trampoline.VmlinuxObjID}
	inner := rest[open+1 : closeIdx]
	if strings.TrimSpace(inner) != "" {
		off := base + open + 1
		for _, part := range strings.Split(inner, ",") {
			word := strings.TrimSpace(part)
			col := off + strings.Index(part, word) + 1
			if word == "" {
				return none, p.errf(off+1, "empty argument type in prototype")
			}
			typ, err := trampoline.ParseType(word, false)
			if err != nil {
				return none, p.errf(col, "%v", err)
			}
			t.Proto.Args = append(t.Proto.Args, typ)
			off += len(part) + 1
		}
	}
	after := rest[closeIdx+1:]
	afterCol := base + closeIdx + 2
	atoks, err := p.tokenize(after)
	if err != nil {
		return none, err
	}
	for i := range atoks {
		atoks[i].col += afterCol - 1
	}
	if len(atoks) < 2 || atoks[0].text != "->" {
		return none, p.errf(afterCol, "expected '-> TYPE' after the argument list (use '-> void' for no return value)")
	}
	ret, err := trampoline.ParseType(atoks[1].text, true)
	if err != nil {
		return none, p.errf(atoks[1].col, "%v", err)
	}
	t.Proto.Ret = ret
	if known, ok := trampoline.KnownTarget(name); ok {
		t.Attrs = known.Attrs
	}
	return t, p.targetAttrs(&t, atoks[2:])
}

func (p *parser) targetAttrs(tg *trampoline.Target, toks []token) error {
	a := &tg.Attrs
	for _, t := range toks {
		switch {
		case t.text == "fmodret":
			a.FmodRet = true
		case t.text == "fmodret-sleepable":
			a.FmodRet, a.FmodRetSleepable = true, true
		case t.text == "error-inject":
			a.ErrorInject = true
		case t.text == "noreturn":
			a.NoReturn = true
		case t.text == "deny":
			a.Deny = true
		case t.text == "notrace":
			a.NoTrace = true
		case t.text == "bpf-prog":
			a.BPFProg = true
		case t.text == "tail-call":
			a.TailCallReachable = true
		case t.text == "tail-call-subprog":
			a.TailCallReachable, a.TailCallViaSubprog = true, true
		case t.text == "tail-call-taken":
			a.TailCallReachable, a.TailCallTaken = true, true
		case t.text == "global-subprog":
			a.GlobalSubprog = true
		case strings.HasPrefix(t.text, "btf-id="):
			v, err := strconv.ParseUint(t.text[len("btf-id="):], 0, 32)
			if err != nil || v == 0 {
				return p.errf(t.col, "bad btf-id %q: want a positive 32-bit number", t.text)
			}
			tg.BTFID = uint32(v)
		default:
			return p.errf(t.col, "unknown target attribute %q (want fmodret, fmodret-sleepable, error-inject, noreturn, deny, notrace, bpf-prog, tail-call, tail-call-subprog, tail-call-taken, global-subprog, btf-id=N)", t.text)
		}
	}
	if a.GlobalSubprog && !a.BPFProg {
		return p.errf(toks[len(toks)-1].col, "global-subprog needs bpf-prog: only a BPF program has subprograms")
	}
	if a.GlobalSubprog && a.TailCallViaSubprog {
		return p.errf(toks[len(toks)-1].col, "global-subprog and tail-call-subprog: a subprogram target makes its tail call itself")
	}
	if a.TailCallReachable && !a.BPFProg {
		return p.errf(toks[len(toks)-1].col, "tail-call needs bpf-prog: only a BPF-program target can reach tail calls")
	}
	return nil
}

func (p *parser) prog(toks []token) error {
	if len(toks) < 3 {
		return p.errf(toks[0].col, "want: prog NAME KIND [cookie] [ip] [sleepable] [link-cookie=N] [returns=N] [on=FUNC]")
	}
	name := toks[1]
	if !isIdent(name.text) {
		return p.errf(name.col, "bad program name %q: use letters, digits and _", name.text)
	}
	if p.c.Prog(name.text) != nil {
		return p.errf(name.col, "program %s declared twice", name.text)
	}
	kind, ok := trampoline.ParseKind(toks[2].text)
	if !ok {
		return p.errf(toks[2].col, "unknown program kind %q (want %s)", toks[2].text, strings.Join(trampoline.KindNames(), ", "))
	}
	pr := &trampoline.Prog{Name: name.text, Kind: kind}
	seen := map[string]bool{}
	for _, t := range toks[3:] {
		key := t.text
		if i := strings.IndexByte(key, '='); i >= 0 {
			key = key[:i+1]
		}
		if seen[key] {
			return p.errf(t.col, "%s given twice", strings.TrimSuffix(key, "="))
		}
		seen[key] = true
		switch key {
		case "cookie":
			pr.Cookie = true
		case "ip":
			pr.IP = true
		case "sleepable":
			pr.Sleepable = true
		case "link-cookie=":
			v, err := strconv.ParseUint(t.text[len(key):], 0, 64)
			if err != nil {
				return p.errf(t.col+len(key), "bad link cookie %q: want an unsigned 64-bit number", t.text[len(key):])
			}
			pr.LinkCookie = v
		case "returns=":
			// The whole of r0 (ld_imm64): an fmod_ret result wider than
			// the function's return type shows how the JIT keeps it.
			v, err := strconv.ParseInt(t.text[len(key):], 0, 64)
			if err != nil {
				return p.errf(t.col+len(key), "bad return value %q: want a signed 64-bit number", t.text[len(key):])
			}
			pr.Returns = v
		case "on=":
			fn := t.text[len(key):]
			if kind.Multi() {
				return p.errf(t.col, "a %s program names its functions on its attach line (attach %s on=F1,F2,...)", kind, pr.Name)
			}
			if p.c.targetLine(fn) == 0 {
				return p.errf(t.col+len(key), "on=%s: no target %s declared before this line", fn, fn)
			}
			if p.c.On == nil {
				p.c.On = map[string]string{}
			}
			p.c.On[pr.Name] = fn
		default:
			return p.errf(t.col, "unknown program option %q (want cookie, ip, sleepable, link-cookie=N, returns=N, on=FUNC)", t.text)
		}
	}
	if kind.Multi() && pr.LinkCookie != 0 {
		return p.errf(toks[0].col, "a %s program has a cookie per function: give them on its attach line (link-cookies=C1,C2,...), not link-cookie=", kind)
	}
	p.c.Progs = append(p.c.Progs, pr)
	p.progLines[pr.Name] = p.line
	return nil
}

// finish checks what only the whole case shows: in a case with several
// targets every single-function program names its function.
func (p *parser) finish() error {
	if !p.c.MultiTarget() {
		if len(p.c.On) > 0 {
			// on= naming the only target says nothing: keep the case as
			// a single-target one.
			p.c.On = nil
		}
		return nil
	}
	for _, pr := range p.c.Progs {
		if _, ok := p.c.On[pr.Name]; ok || pr.Kind.Multi() {
			continue
		}
		p.line = p.progLines[pr.Name]
		return p.errf(1, "program %s: the case has %d targets; name this program's function with on=FUNC", pr.Name, len(p.c.Extra)+1)
	}
	return nil
}

func (p *parser) attachDetach(toks []token) error {
	op := StepOp(toks[0].text)
	if len(toks) < 2 {
		return p.errf(toks[0].col, "%s needs a program name", op)
	}
	pr := p.c.Prog(toks[1].text)
	if pr == nil {
		return p.errf(toks[1].col, "no program %q declared before this line", toks[1].text)
	}
	st := Step{Op: op, Line: p.line, Prog: pr}
	rest := toks[2:]
	for len(rest) > 0 && (strings.HasPrefix(rest[0].text, "on=") || strings.HasPrefix(rest[0].text, "link-cookies=")) {
		t := rest[0]
		rest = rest[1:]
		if op != OpAttach || !pr.Kind.Multi() {
			return p.errf(t.col, "%s: only the attach of a multi program (fentry.multi, fexit.multi, fsession.multi) takes on= and link-cookies=", strings.SplitN(t.text, "=", 2)[0])
		}
		key, val, _ := strings.Cut(t.text, "=")
		vcol := t.col + len(key) + 1
		if (key == "on" && st.Funcs != nil) || (key == "link-cookies" && st.Cookies != nil) {
			return p.errf(t.col, "%s given twice", key)
		}
		if val == "" {
			return p.errf(vcol, "%s= needs a comma-separated list", key)
		}
		for _, item := range strings.Split(val, ",") {
			if key == "on" {
				if p.c.targetLine(item) == 0 {
					return p.errf(vcol, "on=: no target %q declared before this line", item)
				}
				st.Funcs = append(st.Funcs, item)
			} else {
				v, err := strconv.ParseUint(item, 0, 64)
				if err != nil {
					return p.errf(vcol, "bad link cookie %q: want an unsigned 64-bit number", item)
				}
				st.Cookies = append(st.Cookies, v)
			}
			vcol += len(item) + 1
		}
	}
	if op == OpAttach && pr.Kind.Multi() {
		if st.Funcs == nil {
			for _, t := range p.c.Targets() {
				st.Funcs = append(st.Funcs, t.Name)
			}
		}
		if st.Cookies != nil && len(st.Cookies) != len(st.Funcs) {
			return p.errf(toks[0].col, "link-cookies gives %d cookies for %d functions", len(st.Cookies), len(st.Funcs))
		}
	}
	if len(rest) > 0 {
		if rest[0].text != "expect" {
			return p.errf(rest[0].col, "unexpected %q: want 'expect ok' or 'expect ERRNO'", rest[0].text)
		}
		if len(rest) != 2 {
			col := rest[0].col
			if len(rest) > 2 {
				col = rest[2].col
			}
			return p.errf(col, "expect takes one outcome: ok or an errno name (%s)", strings.Join(trampoline.ErrnoNames(), ", "))
		}
		want := rest[1].text
		if want != "ok" {
			e, ok := trampoline.ParseErrno(want)
			if !ok {
				return p.errf(rest[1].col, "unknown outcome %q: want ok or an errno name (%s)", want, strings.Join(trampoline.ErrnoNames(), ", "))
			}
			if op == OpDetach {
				return p.errf(rest[1].col, "a detach never fails in the kernel; only 'expect ok' is allowed")
			}
			want = e.String()
		}
		st.Expect = want
	}
	p.c.Steps = append(p.c.Steps, st)
	return nil
}

func (p *parser) run(toks []token) error {
	st := Step{Op: OpRun, Line: p.line}
	args := toks[1:]
	target := p.c.Target
	if len(args) > 0 && isIdent(args[0].text) {
		t, ok := p.c.LookupTarget(args[0].text)
		if !ok {
			return p.errf(args[0].col, "run %s: no target %s declared before this line", args[0].text, args[0].text)
		}
		st.Func, target = t.Name, t
		args = args[1:]
	} else if len(args) > 0 && p.c.MultiTarget() {
		return p.errf(toks[0].col, "run with arguments in a case with several targets: name the function first (run FUNC ARGS...)")
	}
	for _, t := range args {
		v, err := parseArg(t.text)
		if err != nil {
			return p.errf(t.col, "bad argument %q: want an integer (decimal, 0x hex, or negative)", t.text)
		}
		st.Args = append(st.Args, v)
	}
	if n := len(st.Args); n > 0 && n != len(target.Proto.Args) && p.c.TargetLine > 0 {
		return p.errf(toks[0].col, "run gives %d arguments, %s takes %d", n, target.Name, len(target.Proto.Args))
	}
	p.c.Steps = append(p.c.Steps, st)
	return nil
}

func parseArg(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return v, nil
	}
	u, err := strconv.ParseUint(s, 0, 64)
	return int64(u), err
}
