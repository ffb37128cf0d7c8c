package bpfobs

import (
	"github.com/bpftramp/tramp/vm/guestapi"
	"testing"
)

func TestBenchMethod(t *testing.T) {
	for _, c := range []struct{ method, arch, target, desc string }{
		{"", "x86_64", "__x64_sys_getpgid", guestapi.BenchMethod},
		{guestapi.BenchSyscall, "arm64", "__arm64_sys_getpgid", guestapi.BenchMethod},
		{guestapi.BenchDriver, "arm64", "bpf_get_numa_node_id", guestapi.BenchDriverMethod},
	} {
		desc, target, err := benchMethod(c.method, c.arch)
		if err != nil || target != c.target || desc != c.desc {
			t.Errorf("benchMethod(%q, %q) = %q, %q, %v; want %q, %q", c.method, c.arch, desc, target, err, c.desc, c.target)
		}
	}
	if _, _, err := benchMethod("kprobe", "x86_64"); err == nil {
		t.Error("an unknown method was accepted")
	}
}
