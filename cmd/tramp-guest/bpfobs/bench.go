package bpfobs

import (
	"fmt"

	"github.com/bpftramp/tramp/vm/guestapi"
)

// benchMethod checks a method name and returns its description and the
// traced function on arch.
func benchMethod(method, arch string) (desc, target string, err error) {
	switch method {
	case "", guestapi.BenchSyscall:
		t, err := guestapi.BenchTarget(arch)
		return guestapi.BenchMethod, t, err
	case guestapi.BenchDriver:
		return guestapi.BenchDriverMethod, "bpf_get_numa_node_id", nil
	}
	return "", "", fmt.Errorf("unknown bench method %q (want %s or %s)", method, guestapi.BenchSyscall, guestapi.BenchDriver)
}

// benchOrder is the configurations a job measures, the baseline first and
// without repeats.
func benchOrder(names []string) ([]guestapi.BenchConfig, error) {
	if len(names) == 0 {
		names = guestapi.BenchConfigNames()
	}
	out := []guestapi.BenchConfig{guestapi.BenchConfigs[0]}
	seen := map[string]bool{"none": true}
	for _, n := range names {
		c, err := guestapi.LookupBenchConfig(n)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// benchIters is the number of calls per repetition for a goal of
// targetMS milliseconds at perCallNs nanoseconds a call (at least 1000).
func benchIters(perCallNs float64, targetMS int) int {
	if perCallNs <= 0 {
		return 1000
	}
	n := int(float64(targetMS) * 1e6 / perCallNs)
	return max(n, 1000)
}
