//go:build linux

package bpfobs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bpftramp/tramp/vm/guestapi"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// statsSysctl turns the kernel's per-program run counters on and off.
const statsSysctl = "/proc/sys/kernel/bpf_stats_enabled"

// timeLoop is the wall time of n calls, per call, in nanoseconds.
func timeLoop(l benchLoop, n int) (float64, error) {
	t0 := time.Now()
	err := l.calls(n)
	return float64(time.Since(t0).Nanoseconds()) / float64(n), err
}

// calibrate doubles the call count until a run lasts at least a tenth of
// the goal, then returns the cost per call of that run.
func calibrate(l benchLoop, targetMS int) (float64, error) {
	n := 1000
	for {
		t0 := time.Now()
		if err := l.calls(n); err != nil {
			return 0, err
		}
		el := time.Since(t0)
		if el >= time.Duration(targetMS)*time.Millisecond/10 || n >= 1<<30 {
			return float64(el.Nanoseconds()) / float64(n), nil
		}
		n *= 2
	}
}

// benchProg is a loaded program of a configuration and its link (-1:
// not linked).
type benchProg struct {
	p        guestapi.Prog
	fd, link int
}

// benchState is one configuration during a job.
type benchState struct {
	c        guestapi.BenchConfig
	progs    []*benchProg
	res      guestapi.BenchResult
	targetID uint32 // a multi program's one function
}

func (b *benchState) failed() bool { return b.res.Errno != "ok" }

// load loads the configuration's programs; a failure is kept in res.
func (b *benchState) load(targetID, cookieID uint32) {
	b.targetID = targetID
	for _, p := range b.c.Progs {
		progType, attachType, err := attachTypeOf(p.Kind)
		var raw []byte
		if err == nil {
			var insns asm.Instructions
			if insns, err = shapeProg(p, cookieID); err == nil {
				raw, err = marshalInsns(insns)
			}
		}
		if err != nil {
			b.res.Errno, b.res.Stage, b.res.Error = "EINVAL", "load", err.Error()
			return
		}
		id := targetID
		if strings.HasSuffix(p.Kind, ".multi") {
			id = 0 // loaded for no function
		}
		fd, log, err := loadProg(loadSpec{name: "bench_" + p.Name, progType: progType, attachType: attachType, btfID: id, insns: raw})
		if err != nil {
			b.res.Errno, b.res.Stage, b.res.Error = ErrnoName(err), "load", truncLog(log)
			return
		}
		b.progs = append(b.progs, &benchProg{p: p, fd: fd, link: -1})
	}
}

// link links every program; on failure it unlinks the ones linked and
// keeps the errno in res.
func (b *benchState) link() bool {
	for _, bp := range b.progs {
		_, attachType, _ := attachTypeOf(bp.p.Kind)
		var l int
		var err error
		if strings.HasSuffix(bp.p.Kind, ".multi") {
			l, err = linkCreateTracingMulti(bp.fd, attachType, []uint32{b.targetID}, nil)
		} else {
			l, err = linkCreateTracing(bp.fd, attachType, 0)
		}
		if err != nil {
			b.res.Errno, b.res.Stage, b.res.Error = ErrnoName(err), "attach", bp.p.Name
			b.unlink()
			return false
		}
		bp.link = l
	}
	return true
}

func (b *benchState) unlink() {
	for _, bp := range b.progs {
		if bp.link >= 0 {
			unix.Close(bp.link)
			bp.link = -1
		}
	}
}

func (b *benchState) close() {
	b.unlink()
	for _, bp := range b.progs {
		unix.Close(bp.fd)
	}
}

// RunBench runs a bench job (see BenchJob and the record kinds).
func RunBench(j guestapi.BenchJob, emit func(kind string, payload any) error) error {
	t0 := time.Now()
	order, err := benchOrder(j.Configs)
	if err != nil {
		return err
	}
	arch := guestArch()
	method, target, err := benchMethod(j.Method, arch)
	if err != nil {
		return err
	}
	var loop benchLoop = syscallLoop{}
	if j.Method == guestapi.BenchDriver {
		d, err := newDriverLoop()
		if err != nil {
			return err
		}
		defer d.close()
		loop = d
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("vmlinux BTF: %w", err)
	}
	btfID := func(name string) (uint32, error) {
		var fn *btf.Func
		if err := spec.TypeByName(name, &fn); err != nil {
			return 0, fmt.Errorf("%s in vmlinux BTF: %w", name, err)
		}
		id, err := spec.TypeID(fn)
		return uint32(id), err
	}
	targetID, err := btfID(target)
	if err != nil {
		return err
	}
	st := guestapi.BenchStart{Arch: arch, Method: method, Target: target, BTFID: targetID,
		Clock: "Go time.Now (CLOCK_MONOTONIC)"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		st.Release = unix.ByteSliceToString(u.Release[:])
	}
	cookieID, cerr := btfID("bpf_session_cookie")
	if cerr != nil {
		st.Warnings = append(st.Warnings, cerr.Error())
	}
	st.Reps = j.Reps
	if st.Reps <= 0 {
		st.Reps = guestapi.DefaultBenchReps
	}
	goal := j.TargetMS
	if goal <= 0 {
		goal = guestapi.DefaultBenchTargetMS
	}
	checkCalls := j.CheckCalls
	if checkCalls == 0 {
		checkCalls = guestapi.DefaultBenchCheckCalls
	}
	if err := setStats(false); err != nil {
		st.Warnings = append(st.Warnings, err.Error())
	}
	states := make([]*benchState, len(order))
	for i, c := range order {
		st.Configs = append(st.Configs, c.Name)
		b := &benchState{c: c, res: guestapi.BenchResult{Config: c.Name, Progs: c.Progs, Errno: "ok", RunsPerCall: -1, NsPerCall: []float64{}}}
		if b.res.Progs == nil {
			b.res.Progs = []guestapi.Prog{}
		}
		b.load(targetID, cookieID)
		states[i] = b
	}
	defer func() {
		for _, b := range states {
			b.close()
		}
	}()
	// Warm the loop (page faults, TCG's translation cache) before
	// calibrating.
	if err := loop.calls(10000); err != nil {
		return err
	}
	if st.CalibrationNs, err = calibrate(loop, goal); err != nil {
		return err
	}
	st.Iters = j.Iters
	if st.Iters <= 0 {
		st.Iters = benchIters(st.CalibrationNs, goal)
	}
	st.WarmupIters = max(st.Iters/4, 1000)
	st.InitMS = time.Since(t0).Milliseconds()
	if err := emit(guestapi.KindBenchStart, st); err != nil {
		return err
	}
	for round := 0; round < st.Reps; round++ {
		tr := time.Now()
		for k := range states {
			b := states[k]
			if round%2 == 1 {
				b = states[len(states)-1-k]
			}
			if b.failed() || !b.link() {
				continue
			}
			if err := loop.calls(st.WarmupIters); err != nil {
				return err
			}
			ns, err := timeLoop(loop, st.Iters)
			if err != nil {
				return err
			}
			b.res.NsPerCall = append(b.res.NsPerCall, ns)
			b.unlink()
		}
		if err := emit(guestapi.KindBenchRound, guestapi.BenchRound{Round: round, Millis: time.Since(tr).Milliseconds()}); err != nil {
			return err
		}
	}
	for _, b := range states {
		b.res.Iters = st.Iters
		if !b.failed() && checkCalls > 0 {
			if b.link() {
				b.res.RunsPerCall, b.res.CheckError = countRuns(loop, b.progs, checkCalls)
				b.unlink()
			}
		}
		if err := emit(guestapi.KindBenchResult, b.res); err != nil {
			return err
		}
	}
	if len(j.AttachCounts) > 0 {
		return benchAttach(j, spec, emit)
	}
	return nil
}

// benchAttach times attaching and detaching N functions with one
// fentry.multi link against N single fentry links (see
// BenchJob.AttachCounts). The ways alternate within each repetition.
func benchAttach(j guestapi.BenchJob, spec *btf.Spec, emit func(string, any) error) error {
	reps := j.AttachReps
	if reps <= 0 {
		reps = guestapi.DefaultBenchAttachReps
	}
	most := slices.Max(j.AttachCounts)
	scan := guestapi.ShapeScan{Arch: guestArch()}
	cands, err := scanShapes(spec, traceable(&scan), errorInjectable(&scan), scan.Arch, &scan)
	if err != nil {
		return fmt.Errorf("attach cost: scanning BTF: %w", err)
	}
	insns, err := marshalInsns(trivialProg())
	if err != nil {
		return err
	}
	loadFor := func(kind uint32, id uint32) (int, error) {
		fd, _, err := loadProg(loadSpec{name: "bench_attach", progType: progTypeTracing, attachType: kind, btfID: id, insns: insns})
		return fd, err
	}
	var ids []uint32
	var names []string
	for tried, c := range PickShapes(cands, len(cands), 7) {
		if len(ids) == most || tried == 4*most {
			break
		}
		fd, err := loadFor(attachFentry, c.BTFID)
		if err != nil {
			continue
		}
		if l, err := linkCreateTracing(fd, attachFentry, 0); err == nil {
			unix.Close(l)
			ids, names = append(ids, c.BTFID), append(names, c.Name)
		}
		unix.Close(fd)
	}
	if len(ids) < most {
		return fmt.Errorf("attach cost: only %d of %d functions take a fentry program", len(ids), most)
	}
	for k, n := range j.AttachCounts {
		multi := guestapi.BenchAttach{N: n, Way: guestapi.AttachMulti, Errno: "ok", AttachNs: []float64{}, DetachNs: []float64{}}
		single := guestapi.BenchAttach{N: n, Way: guestapi.AttachSingle, Errno: "ok", AttachNs: []float64{}, DetachNs: []float64{}}
		if k == 0 {
			multi.Funcs = names
		}
		for r := 0; r < reps; r++ {
			if multi.Errno == "ok" {
				t0 := time.Now()
				fd, err := loadFor(attachFentryMulti, 0)
				if err != nil {
					multi.Errno, multi.Stage = ErrnoName(err), "load"
				} else if l, err := linkCreateTracingMulti(fd, attachFentryMulti, ids[:n], nil); err != nil {
					multi.Errno, multi.Stage = ErrnoName(err), "attach"
					unix.Close(fd)
				} else {
					t1 := time.Now()
					unix.Close(l)
					unix.Close(fd)
					multi.AttachNs = append(multi.AttachNs, float64(t1.Sub(t0).Nanoseconds()))
					multi.DetachNs = append(multi.DetachNs, float64(time.Since(t1).Nanoseconds()))
				}
			}
			if single.Errno == "ok" {
				t0 := time.Now()
				var fds, links []int
				for _, id := range ids[:n] {
					fd, err := loadFor(attachFentry, id)
					if err != nil {
						single.Errno, single.Stage = ErrnoName(err), "load"
						break
					}
					fds = append(fds, fd)
					l, err := linkCreateTracing(fd, attachFentry, 0)
					if err != nil {
						single.Errno, single.Stage = ErrnoName(err), "attach"
						break
					}
					links = append(links, l)
				}
				t1 := time.Now()
				for _, l := range links {
					unix.Close(l)
				}
				for _, fd := range fds {
					unix.Close(fd)
				}
				if single.Errno == "ok" {
					single.AttachNs = append(single.AttachNs, float64(t1.Sub(t0).Nanoseconds()))
					single.DetachNs = append(single.DetachNs, float64(time.Since(t1).Nanoseconds()))
				}
			}
		}
		for _, p := range []guestapi.BenchAttach{multi, single} {
			if err := emit(guestapi.KindBenchAttach, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// countRuns turns the run counters on, makes n calls, turns them off and
// returns the programs' runs per call (0 with no program).
func countRuns(loop benchLoop, progs []*benchProg, n int) (float64, string) {
	before := make([]uint64, len(progs))
	for i, p := range progs {
		info, err := getProgInfo(p.fd)
		if err != nil {
			return -1, err.Error()
		}
		before[i] = info.RunCnt
	}
	if err := setStats(true); err != nil {
		return -1, err.Error()
	}
	if err := loop.calls(n); err != nil {
		setStats(false)
		return -1, err.Error()
	}
	if err := setStats(false); err != nil {
		return -1, err.Error()
	}
	var runs uint64
	for i, p := range progs {
		info, err := getProgInfo(p.fd)
		if err != nil {
			return -1, err.Error()
		}
		runs += info.RunCnt - before[i]
	}
	return float64(runs) / float64(n), ""
}

// setStats writes kernel.bpf_stats_enabled.
func setStats(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	if err := os.WriteFile(statsSysctl, []byte(v), 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w (no run counters)", statsSysctl, err)
		}
		return err
	}
	return nil
}
