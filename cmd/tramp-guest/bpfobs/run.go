//go:build linux

package bpfobs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

const (
	vmlinuxTrampKeyBase = 6442450944 // (btf_obj_id 1 << 32) | 0x80000000, bpf_trampoline_compute_key
	maxCapture          = 4096
	fentryTriggerTarget = "bpf_fentry_test1"
	modRetTriggerTarget = "bpf_modify_return_test"
)

// CaptureKallsyms makes every capture re-read the [bpf] symbols of
// /proc/kallsyms (about 1 s per capture under TCG). When false, kallsyms
// is only read when the traced function's call site does not lead
// straight to the trampoline (arm64 through ftrace_caller or a PLT) or
// the target is a BPF program; else the image read is bounded by the
// addresses of the programs this process loaded. Either way the image
// is the one the call site leads to (see live.go).
var CaptureKallsyms = false

// env is the per-boot state shared by all Runs: nothing in it changes
// while the VM lives, apart from the observation map's contents.
type env struct {
	release, machine string
	spec             *btf.Spec
	btfIDs           map[string]uint32
	obs              *obsMap
	triggers         map[string]int    // trigger target → fd
	triggerErr       map[string]string // trigger target → errno
	triggerAddrs     map[string]uint64 // trigger target → bpf_func
	fsessProbe       string
	fsessProbeLog    string
	multiProbe       string // errno of a trivial fentry.multi load
	multiProbeLog    string
	multiLimits      map[string]string // link cnt → errno
	syms             map[string]uint64
	kc               *kcore
	directCallOff    int // struct ftrace_ops.direct_call, -1: unknown
	errs             []string
	initMillis       int64
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

func getEnv() (*env, error) {
	envOnce.Do(func() { theEnv, envErr = newEnv() })
	return theEnv, envErr
}

func newEnv() (*env, error) {
	t0 := time.Now()
	e := &env{btfIDs: map[string]uint32{}, triggers: map[string]int{}, triggerErr: map[string]string{}, triggerAddrs: map[string]uint64{}}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		e.release = unix.ByteSliceToString(u.Release[:])
		e.machine = unix.ByteSliceToString(u.Machine[:])
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("vmlinux BTF: %w", err)
	}
	e.spec = spec
	e.directCallOff = memberOffset(spec, "ftrace_ops", "direct_call")
	for _, n := range []string{fentryTriggerTarget, modRetTriggerTarget, "bpf_session_cookie", "bpf_session_is_return"} {
		e.btfID(n)
	}
	if e.obs, err = newObsMap(recSize, recEntries); err != nil {
		return nil, err
	}
	// Programs that live for the whole boot are loaded before any address
	// is taken, so that they cannot land inside an image read later.
	for _, t := range []struct {
		target string
		attach uint32
	}{{fentryTriggerTarget, attachFentry}, {modRetTriggerTarget, attachModRet}} {
		fd, _, err := e.loadTrivial("trig_"+t.target[4:], t.attach, t.target)
		e.triggerErr[t.target] = ErrnoName(err)
		if err == nil {
			e.triggers[t.target] = fd
			if info, err := getProgInfo(fd); err == nil {
				e.triggerAddrs[t.target] = info.JitedKsyms
			}
		}
	}
	fd, log, err := e.loadTrivial("probe_fsession", attachFsession, fentryTriggerTarget)
	e.fsessProbe, e.fsessProbeLog = ErrnoName(err), truncLog(log)
	if err == nil {
		unix.Close(fd)
	}
	// The multi attach types: a trivial fentry.multi program, loaded for
	// no function.
	if insns, err := marshalInsns(trivialProg()); err == nil {
		fd, log, err := loadProg(loadSpec{name: "probe_multi", progType: progTypeTracing, attachType: attachFentryMulti, insns: insns})
		e.multiProbe, e.multiProbeLog = ErrnoName(err), truncLog(log)
		if err == nil {
			// The link's count limits: no function, and one more than
			// MAX_TRACING_MULTI_CNT (refused before the ids are read,
			// so one id is enough to point at).
			one := []uint32{e.btfID(fentryTriggerTarget)}
			e.multiLimits = map[string]string{}
			for _, n := range []uint32{0, trampoline.MaxTracingMultiCnt + 1} {
				a := linkCreateTracingMultiAttr{ProgFd: uint32(fd), AttachType: attachFentryMulti, IDs: ptr(&one[0]), Cnt: n}
				r, err := bpfCall(cmdLinkCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
				if err == nil {
					unix.Close(int(r))
				}
				e.multiLimits[fmt.Sprint(n)] = ErrnoName(err)
			}
			runtime.KeepAlive(one)
			unix.Close(fd)
		}
	}
	if f, err := os.Open("/proc/kcore"); err != nil {
		e.errs = append(e.errs, err.Error())
	} else if e.kc, err = newKcore(f); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	if err := e.readSyms(nil); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	e.initMillis = time.Since(t0).Milliseconds()
	return e, nil
}

// readSyms reads the helper symbols, the deterministic test targets and
// extra names from /proc/kallsyms (one pass).
func (e *env) readSyms(extra []string) error {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return err
	}
	defer f.Close()
	names := append(append([]string{}, HelperSymbols...), extra...)
	m, err := readNamed(f, names, []string{"bpf_fentry_test", "bpf_modify_return_test"})
	if err != nil {
		return err
	}
	if e.syms == nil {
		e.syms = m
	} else {
		for k, v := range m {
			e.syms[k] = v
		}
	}
	return nil
}

// padding reads the 16 bytes before each __bpf_* helper symbol from
// /proc/kcore, on x86_64 only (nil without kcore; a symbol whose read
// fails is left out).
func (e *env) padding(syms map[string]uint64) map[string]string {
	if e.kc == nil || runtime.GOARCH != "amd64" {
		return nil
	}
	out := map[string]string{}
	for n, a := range syms {
		if !strings.HasPrefix(n, "__bpf_") || a < 16 {
			continue
		}
		if b, err := e.kc.read(a-16, 16); err == nil && len(b) == 16 {
			out[n] = hex.EncodeToString(b)
		}
	}
	return out
}

func (e *env) btfID(name string) uint32 {
	if id, ok := e.btfIDs[name]; ok {
		return id
	}
	var id uint32
	var fn *btf.Func
	if err := e.spec.TypeByName(name, &fn); err == nil {
		if tid, err := e.spec.TypeID(fn); err == nil {
			id = uint32(tid)
		}
	}
	e.btfIDs[name] = id
	return id
}

func (e *env) loadTrivial(name string, attach uint32, target string) (int, string, error) {
	insns, err := marshalInsns(trivialProg())
	if err != nil {
		return -1, "", err
	}
	id := e.btfID(target)
	if id == 0 {
		return -1, "", fmt.Errorf("no BTF id for %s", target)
	}
	return loadProg(loadSpec{name: name, progType: progTypeTracing, attachType: attach, btfID: id, insns: insns})
}

// truncLog keeps the head and the tail (where the verdict is) of a
// verifier log.
func truncLog(s string) string {
	const head, tail = 2048, 6144
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + fmt.Sprintf("\n... [%d bytes cut] ...\n", len(s)-head-tail) + s[len(s)-tail:]
}

// resetObs clears the counter and the used record slots.
func (e *env) resetObs() {
	n := atomic.LoadUint64((*uint64)(unsafe.Pointer(&e.obs.mem[0])))
	if n > recEntries-1 {
		n = recEntries - 1
	}
	clear(e.obs.mem[recSize : (n+1)*recSize])
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&e.obs.mem[0])), 0)
}

type progState struct {
	p     guestapi.Prog
	index int
	fd    int
	links []int // live links, oldest first (a program may be linked twice)
	// linkFuncs are the functions each live link is on (one for a single
	// link, the attach's list for a multi link).
	linkFuncs [][]string
	id        uint32
	loaded    bool
}

// on says whether one of the program's live links is on function f.
func (ps *progState) on(f string) bool {
	for _, fs := range ps.linkFuncs {
		for _, x := range fs {
			if x == f {
				return true
			}
		}
	}
	return false
}

// Run executes the job's ops in order and emits one record per step
// (and start, observations, capture and done records; see the Kind*
// constants).
func Run(job guestapi.BPFJob, emit func(kind string, payload any) error) error {
	t0 := time.Now()
	e, err := getEnv()
	if err != nil {
		return err
	}
	e.resetObs()
	var targetID uint32
	var tgt *loadedTarget
	var tgtErrs []string
	if job.TargetProg != nil {
		var err error
		if tgt, err = loadTarget(job.Target, job.TargetProg); err != nil {
			tgtErrs = append(tgtErrs, err.Error())
		} else {
			defer tgt.close()
			targetID = tgt.btfID
		}
	} else {
		targetID = e.btfID(job.Target)
		var missing []string
		for _, f := range append([]string{job.Target}, job.Targets...) {
			if _, ok := e.syms[f]; !ok && f != "" {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			if err := e.readSyms(missing); err != nil {
				e.errs = append(e.errs, err.Error())
			}
		}
	}
	funcs := []string{job.Target}
	if job.TargetProg == nil {
		funcs = append(funcs, job.Targets...)
	}
	trigger := fentryTriggerTarget
	if strings.HasPrefix(job.Target, modRetTriggerTarget) {
		trigger = modRetTriggerTarget
	}
	if job.TargetProg != nil {
		trigger = guestapi.TargetTrigger
	}
	st := guestapi.Start{
		Release: e.release, Machine: e.machine, Target: job.Target,
		BTFIDs:            map[string]uint32{},
		FsessionSupported: e.fsessProbe == "ok", FsessionProbe: e.fsessProbe, FsessionProbeLog: e.fsessProbeLog,
		TracingMultiProbe: e.multiProbe, TracingMultiProbeLog: e.multiProbeLog, TracingMultiCnt: e.multiLimits,
		Trigger: trigger, TriggerErrno: e.triggerErr[trigger],
		Symbols:    map[string]uint64{},
		Sysctls:    map[string]string{},
		InitMillis: e.initMillis,
		Errors:     append(append([]string{}, e.errs...), tgtErrs...),
	}
	for _, n := range []string{"bpf_session_cookie", "bpf_session_is_return"} {
		st.BTFIDs[n] = e.btfID(n)
	}
	for _, n := range HelperSymbols {
		if a, ok := e.syms[n]; ok {
			st.Symbols[n] = a
		}
	}
	var key, targetAddr uint64
	if job.TargetProg != nil {
		st.BTFIDs[job.Target] = targetID
		st.TriggerErrno = "ok"
		if tgt == nil {
			st.TriggerErrno = "ENOENT"
		} else {
			key, targetAddr = progTrampKey(tgt.id, tgt.btfID), tgt.bpfFunc
			st.TrampolineKey = key
			st.Symbols[job.Target] = targetAddr
			st.TargetProg = &guestapi.TargetProgInfo{ID: tgt.id, Tag: tgt.tag, BPFFunc: tgt.bpfFunc, TailCall: job.TargetProg.TailCall,
				TailCallSubprog: job.TargetProg.TailCallSubprog, TailCallTaken: job.TargetProg.TailCallTaken,
				GlobalSubprog: job.TargetProg.GlobalSubprog}
		}
	} else {
		for _, n := range append([]string{trigger}, funcs...) {
			st.BTFIDs[n] = e.btfID(n)
		}
		for _, f := range funcs[1:] {
			if a, ok := e.syms[f]; ok {
				st.Symbols[f] = a
			}
		}
		if targetID != 0 {
			key = vmlinuxTrampKeyBase + uint64(targetID)
			st.TrampolineKey = key
		}
		if a, ok := e.syms[job.Target]; ok {
			st.Symbols[job.Target] = a
			targetAddr = a
		}
	}
	st.Padding = e.padding(st.Symbols)
	for _, s := range []string{"net/core/bpf_jit_enable", "net/core/bpf_jit_harden", "net/core/bpf_jit_kallsyms", "kernel/kptr_restrict", "kernel/unprivileged_bpf_disabled"} {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			st.Sysctls[s] = err.Error()
		} else {
			st.Sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	if err := emit(guestapi.KindStart, st); err != nil {
		return err
	}

	progs := map[string]*progState{}
	for i, p := range job.Progs {
		progs[p.Name] = &progState{p: p, index: i, fd: -1}
	}
	var order []*progState // attach order of live links
	defer func() {
		for _, ps := range progs {
			for _, l := range ps.links {
				unix.Close(l)
			}
			if ps.fd >= 0 {
				unix.Close(ps.fd)
			}
		}
	}()
	attachedNames := func() []string {
		out := []string{}
		for _, ps := range order {
			out = append(out, ps.p.Name)
		}
		return out
	}

	for i, op := range job.Ops {
		ts := time.Now()
		s := guestapi.Step{Step: i, Op: op.Op, Prog: op.Prog, Line: op.Line, Errno: "ok"}
		var obs *guestapi.Observations
		captureAfter := false
		switch op.Op {
		case "attach", "detach":
			ps := progs[op.Prog]
			if ps == nil {
				s.Errno, s.Stage, s.Error = "ENOENT", op.Op, fmt.Sprintf("no program %q in job", op.Prog)
				break
			}
			if op.Op == "attach" {
				id, fn := targetID, job.Target
				if ps.p.Target != "" && tgt == nil {
					id, fn = e.btfID(ps.p.Target), ps.p.Target
				}
				e.attach(ps, id, tgt, op, fn, &s)
				if s.Errno == "ok" {
					order = append(order, ps)
				}
			} else {
				if len(ps.links) == 0 {
					s.Errno, s.Stage, s.Error = "EBADF", "detach", "program is not attached"
				} else {
					// Close the newest link of the program.
					l := ps.links[len(ps.links)-1]
					ps.links = ps.links[:len(ps.links)-1]
					ps.linkFuncs = ps.linkFuncs[:len(ps.linkFuncs)-1]
					if err := unix.Close(l); err != nil {
						s.Errno, s.Stage = ErrnoName(err), "detach"
					}
					for j := len(order) - 1; j >= 0; j-- {
						if order[j] == ps {
							order = append(order[:j], order[j+1:]...)
							break
						}
					}
				}
			}
			s.ProgID = ps.id
			// An extension alone has no trampoline image.
			for _, o := range order {
				captureAfter = captureAfter || job.Capture && o.p.Kind != "freplace"
			}
		case "crash":
			// For the harness's own tests: crash the kernel here, so that
			// a panic in the middle of a batch can be tested.
			s.Errno = "ok"
			if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
				s.Errno, s.Error = ErrnoName(err), err.Error()
			}
		case "run":
			s.Trigger = trigger
			fd, ok := e.triggers[trigger]
			var data []byte
			if job.TargetProg != nil {
				ok = tgt != nil
				if ok {
					fd, data = tgt.fd, make([]byte, testRunPacketLen)
				}
			}
			if !ok {
				s.Errno, s.Stage, s.Error = st.TriggerErrno, "run", "trigger program did not load"
				break
			}
			e.resetObs()
			rv, dur, err := testRunData(fd, data)
			s.Errno = ErrnoName(err)
			if err != nil {
				s.Stage = "run"
			} else {
				s.Retval, s.Duration = &rv, dur
			}
			o := e.drain(i, job)
			obs = &o
			e.resetObs()
		default:
			s.Errno, s.Error = "EINVAL", fmt.Sprintf("unknown op %q", op.Op)
		}
		s.Attached = attachedNames()
		s.Millis = time.Since(ts).Milliseconds()
		if err := emit(guestapi.KindStep, s); err != nil {
			return err
		}
		if obs != nil {
			if err := emit(guestapi.KindObservations, *obs); err != nil {
				return err
			}
		}
		if captureAfter && len(funcs) == 1 {
			c := e.capture(i, captureTarget{name: job.Target, key: key, addr: targetAddr, prog: tgt}, order, progs)
			if err := emit(guestapi.KindCapture, c); err != nil {
				return err
			}
		} else if captureAfter {
			// Every function a live link is on, in the job's order.
			for _, f := range funcs {
				var on []*progState
				for _, o := range order {
					if o.p.Kind != "freplace" && o.on(f) {
						on = append(on, o)
					}
				}
				id := e.btfID(f)
				if len(on) == 0 || id == 0 {
					continue
				}
				c := e.capture(i, captureTarget{name: f, key: vmlinuxTrampKeyBase + uint64(id), addr: e.syms[f]}, on, progs)
				if err := emit(guestapi.KindCapture, c); err != nil {
					return err
				}
			}
		}
	}
	return emit(guestapi.KindJobDone, guestapi.JobDone{Steps: len(job.Ops), Millis: time.Since(t0).Milliseconds()})
}

// attach loads ps if needed, then creates its tracing link. tgt is the
// target program of a BPF-program target (nil for vmlinux functions).
// fn is the function a single link goes on; a multi link's are op.On.
func (e *env) attach(ps *progState, targetID uint32, tgt *loadedTarget, op guestapi.Op, fn string, s *guestapi.Step) {
	// A program that is already linked is linked again: that is what a
	// duplicate attach tests (the kernel is expected to refuse).
	progType, attachType, err := attachTypeOf(ps.p.Kind)
	if err != nil {
		s.Errno, s.Stage, s.Error = "EINVAL", "load", err.Error()
		return
	}
	multi := strings.HasSuffix(ps.p.Kind, ".multi")
	if multi {
		// A multi program is loaded for no function (attach_btf_id 0).
		targetID = 0
	}
	if ps.fd < 0 {
		if targetID == 0 && !multi {
			s.Errno, s.Stage, s.Error = "ENOENT", "load", "target has no BTF id"
			return
		}
		spec := observerSpec{
			Index: ps.index, Kind: ps.p.Kind, Cookie: ps.p.Cookie, IP: ps.p.IP,
			Returns: ps.p.Returns, MapFD: e.obs.fd,
			IsReturnID: e.btfIDs["bpf_session_is_return"], CookieID: e.btfIDs["bpf_session_cookie"],
			CookieValue: trampoline.CookieValueFor(ps.index), Frame: true,
		}
		in, err := buildObserver(spec)
		var raw []byte
		if err == nil {
			raw, err = marshalInsns(in)
		}
		if err != nil {
			s.Errno, s.Stage, s.Error = "EINVAL", "load", err.Error()
			return
		}
		ls := loadSpec{name: ps.p.Name, progType: progType, attachType: attachType,
			btfID: targetID, sleepable: ps.p.Sleepable, insns: raw}
		if tgt != nil {
			ls.attachProgFD = tgt.fd
			if ps.p.Kind == "freplace" {
				// bpf_check_attach_target matches the extension's own
				// BTF function against the target's: give it the same.
				raw, err = marshalInsns(extInsns())
				var fi []byte
				if err == nil {
					fi, err = funcInfo([]uint32{0}, []uint32{tgt.btfID})
				}
				if err != nil {
					s.Errno, s.Stage, s.Error = "EINVAL", "load", err.Error()
					return
				}
				ls.insns, ls.btfFD, ls.funcInfo = raw, tgt.btfFD, fi
			}
		}
		fd, log, err := loadProg(ls)
		if err != nil {
			s.Errno, s.Stage, s.VerifierLog = ErrnoName(err), "load", truncLog(log)
			return
		}
		ps.fd, s.Loaded = fd, true
		if info, err := getProgInfo(fd); err == nil {
			ps.id = info.ID
		}
	}
	if multi {
		ids := make([]uint32, len(op.On))
		for i, f := range op.On {
			if ids[i] = e.btfID(f); ids[i] == 0 {
				s.Errno, s.Stage, s.Error = "ENOENT", "attach", fmt.Sprintf("%s has no BTF id", f)
				return
			}
		}
		lfd, err := linkCreateTracingMulti(ps.fd, attachType, ids, op.Cookies)
		if err != nil {
			s.Errno, s.Stage = ErrnoName(err), "attach"
			return
		}
		ps.links = append(ps.links, lfd)
		ps.linkFuncs = append(ps.linkFuncs, append([]string(nil), op.On...))
		return
	}
	lfd, err := linkCreateTracing(ps.fd, attachType, ps.p.LinkCookie)
	if err != nil {
		s.Errno, s.Stage = ErrnoName(err), "attach"
		return
	}
	ps.links = append(ps.links, lfd)
	ps.linkFuncs = append(ps.linkFuncs, []string{fn})
}

func (e *env) drain(step int, job guestapi.BPFJob) guestapi.Observations {
	// The map memory is shared with the kernel; the programs have all
	// finished when test_run returns.
	recs, count, lost, errs := DecodeRecords(e.obs.mem, recSize, recEntries)
	for i := range recs {
		if recs[i].ProgIndex < len(job.Progs) {
			recs[i].Prog = job.Progs[recs[i].ProgIndex].Name
		}
	}
	if recs == nil {
		recs = []guestapi.Obs{}
	}
	return guestapi.Observations{Step: step, Count: count, Lost: lost, Records: recs, Errors: errs}
}

// captureTarget is where a trampoline is: the traced function, its key,
// its address, and the target program of a BPF-program target.
type captureTarget struct {
	name      string
	key, addr uint64
	prog      *loadedTarget
}

func (e *env) capture(step int, tg captureTarget, order []*progState, all map[string]*progState) guestapi.Capture {
	t0 := time.Now()
	c := guestapi.Capture{Step: step, Target: tg.name, Name: fmt.Sprintf("bpf_trampoline_%d", tg.key)}
	c.TargetAddr = tg.addr
	if e.kc == nil {
		c.Errors = append(c.Errors, "no /proc/kcore")
	} else if c.TargetAddr != 0 {
		head, err := e.kc.read(c.TargetAddr, 16)
		if err != nil {
			c.Errors = append(c.Errors, err.Error())
		}
		c.TargetHead = hex.EncodeToString(head)
		switch runtime.GOARCH {
		case "amd64":
			c.CallSite = guestapi.DecodeCallSite("x86_64", c.TargetAddr, head)
		case "arm64", "riscv64", "s390x":
			c.CallSite = guestapi.DecodeCallSite(runtime.GOARCH, c.TargetAddr, head)
		}
	}
	var liveErr error
	if e.kc == nil || c.TargetAddr == 0 {
		liveErr = errors.New("the traced function's entry was not read")
	} else {
		k := liveKernel{mem: e.kc, ftraceCaller: e.syms["ftrace_caller"], directCallOff: e.directCallOff}
		c.Live, c.LiveVia, liveErr = k.follow(runtime.GOARCH, c.TargetAddr, c.CallSite)
	}
	if liveErr != nil {
		c.Live, c.LiveVia, c.LiveError = 0, "", liveErr.Error()
	}
	// A direct call or branch from a kernel function needs no kallsyms:
	// the CPU goes there. Anything else is checked against the names.
	direct := c.Live != 0 && tg.prog == nil && (c.LiveVia == "call" || c.LiveVia == "jmp" || c.LiveVia == "bl" || c.LiveVia == "brasl")

	// Addresses of every program this process loaded bound the read
	// when kallsyms is not consulted.
	var known []guestapi.Sym
	for _, ps := range all {
		if ps.fd < 0 {
			continue
		}
		pi := guestapi.ProgImage{Name: ps.p.Name, Index: ps.index, LinkCookie: ps.p.LinkCookie}
		info, err := getProgInfo(ps.fd)
		if err != nil {
			pi.Error = ErrnoName(err)
		} else {
			pi.ID, pi.Tag = info.ID, hex.EncodeToString(info.Tag[:])
			pi.JitedKsym, pi.JitedLen, pi.XlatedLen = info.JitedKsyms, info.JitedProgLen, info.XlatedProgLen
			known = append(known, guestapi.Sym{Addr: info.JitedKsyms, Type: "t", Name: "prog:" + ps.p.Name, Module: "bpf"})
		}
		for _, o := range order {
			if o == ps {
				c.Progs = append(c.Progs, pi)
			}
		}
	}
	for name, a := range e.triggerAddrs {
		known = append(known, guestapi.Sym{Addr: a, Type: "t", Name: "prog:" + name, Module: "bpf"})
	}
	if tg.prog != nil {
		known = append(known, guestapi.Sym{Addr: tg.prog.bpfFunc, Type: "t", Name: "prog:" + tg.name, Module: "bpf"})
	}
	sort.Slice(c.Progs, func(i, j int) bool { return attachRank(order, c.Progs[i].Name) < attachRank(order, c.Progs[j].Name) })

	if !direct || CaptureKallsyms {
		t1 := time.Now()
		ch, err := chooseImage(c.Name, c.Live, liveErr, readKallsymsBPF, defaultSettle)
		c.KallsymsMillis = time.Since(t1).Milliseconds()
		c.BPFSyms, c.Candidates, c.WaitedMillis = ch.Syms, ch.Cands, ch.Waited.Milliseconds()
		if err != nil {
			c.Errors = append(c.Errors, err.Error())
		} else {
			c.Addr, c.AddrFrom = ch.Addr, ch.From
		}
		known = append(known, c.BPFSyms...)
	} else {
		c.Addr, c.AddrFrom = c.Live, "call_site"
	}
	sort.SliceStable(known, func(i, j int) bool { return known[i].Addr < known[j].Addr })
	if c.Addr != 0 && e.kc != nil {
		n := maxCapture
		if next, ok := nextAfter(known, c.Addr); ok && next.Addr-c.Addr < maxCapture {
			n = int(next.Addr - c.Addr)
			c.NextSym, c.NextAddr = next.Name, next.Addr
		}
		t2 := time.Now()
		b, err := e.kc.read(c.Addr, n)
		if err != nil {
			c.Errors = append(c.Errors, err.Error())
		}
		c.KcoreMillis = time.Since(t2).Milliseconds()
		c.Len, c.Bytes = len(b), hex.EncodeToString(b)
	}
	c.Millis = time.Since(t0).Milliseconds()
	return c
}

// readKallsymsBPF reads the [bpf] symbols of /proc/kallsyms.
func readKallsymsBPF() ([]guestapi.Sym, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBPFSyms(f)
}

func attachRank(order []*progState, name string) int {
	for i, o := range order {
		if o.p.Name == name {
			return i
		}
	}
	return len(order)
}
