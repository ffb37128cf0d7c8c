//go:build linux

package bpfobs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/guestapi"
)

func TestBenchConfigs(t *testing.T) {
	names := map[string]bool{}
	for _, c := range guestapi.BenchConfigs {
		if names[c.Name] {
			t.Errorf("configuration %s twice", c.Name)
		}
		names[c.Name] = true
		progs := map[string]bool{}
		for _, p := range c.Progs {
			if progs[p.Name] {
				t.Errorf("%s: program %s twice", c.Name, p.Name)
			}
			progs[p.Name] = true
			if _, _, err := attachTypeOf(p.Kind); err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
			if p.Cookie && p.Kind != "fsession" {
				t.Errorf("%s: a %s program calling bpf_session_cookie is refused at load", c.Name, p.Kind)
			}
		}
	}
	for _, n := range []string{"none", "fentry", "fexit", "fentry+fexit", "fsession", "fsession-cookie", "fmod_ret", "fentry-x2", "fentry-x4", "fentry-x8"} {
		if !names[n] {
			t.Errorf("no configuration %s", n)
		}
	}
	if guestapi.BenchConfigs[0].Name != "none" || len(guestapi.BenchConfigs[0].Progs) != 0 {
		t.Error("the baseline is not first")
	}
	for n, want := range map[string]int{"fentry-x2": 2, "fentry-x4": 4, "fentry-x8": 8} {
		c, err := guestapi.LookupBenchConfig(n)
		if err != nil || len(c.Progs) != want {
			t.Errorf("%s: %d programs (%v), want %d", n, len(c.Progs), err, want)
		}
	}
	if _, err := guestapi.LookupBenchConfig("fentry-x3"); err == nil || !strings.Contains(err.Error(), "fentry-x8") {
		t.Errorf("unknown configuration: %v", err)
	}
}

func TestBenchOrder(t *testing.T) {
	got, err := benchOrder([]string{"fexit", "none", "fentry", "fexit"})
	require.NoError(t, err)
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "none,fexit,fentry" {
		t.Errorf("order %v: want the baseline first, no repeats", names)
	}
	all, err := benchOrder(nil)
	if err != nil || len(all) != len(guestapi.BenchConfigs) {
		t.Errorf("default order: %d configurations (%v)", len(all), err)
	}
	if _, err := benchOrder([]string{"bogus"}); err == nil {
		t.Error("unknown configuration accepted")
	}
}

func TestBenchIters(t *testing.T) {
	if n := benchIters(1000, 200); n != 200000 {
		t.Errorf("200 ms at 1 µs a call: %d calls", n)
	}
	if n := benchIters(1e9, 200); n != 1000 {
		t.Errorf("floor: %d", n)
	}
	if n := benchIters(0, 200); n != 1000 {
		t.Errorf("unknown cost: %d", n)
	}
}

func TestBenchTarget(t *testing.T) {
	for arch, want := range map[string]string{"x86_64": "__x64_sys_getpgid", "arm64": "__arm64_sys_getpgid", "riscv64": "__riscv_sys_getpgid", "s390x": "__s390x_sys_getpgid"} {
		if got, err := guestapi.BenchTarget(arch); err != nil || got != want {
			t.Errorf("%s: %s, %v", arch, got, err)
		}
	}
	if _, err := guestapi.BenchTarget("ppc64le"); err == nil {
		t.Error("ppc64le has a bench target")
	}
}

func TestBenchProgs(t *testing.T) {
	// Every program of every configuration builds; the cookie one calls
	// the kfunc.
	for _, c := range guestapi.BenchConfigs {
		for _, p := range c.Progs {
			in, err := shapeProg(p, 1234)
			if err != nil {
				t.Fatalf("%s/%s: %v", c.Name, p.Name, err)
			}
			calls := 0
			for _, i := range in {
				if i.IsKfuncCall() {
					calls++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[p.Cookie]; calls != want {
				t.Errorf("%s/%s: %d kfunc calls, want %d", c.Name, p.Name, calls, want)
			}
		}
	}
}
