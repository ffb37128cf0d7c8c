package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The JSON contract of 'tramp emu --json' and its exit codes.
func TestEmuJSON(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession cookie\nattach s\nrun\n")
	code, out, e := runTramp("emu", p, "--json", "--arch", "x86_64")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, e)
	}
	var got struct {
		Calls []struct {
			Prog     string   `json:"prog"`
			Phase    string   `json:"phase"`
			Order    int      `json:"order"`
			Args     []uint64 `json:"args"`
			IsReturn int      `json:"is_return"`
			Ret      *uint64  `json:"ret"`
		} `json:"calls"`
		Retval uint64 `json:"retval"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// bpf_fentry_test1(1) returns 2 (the kernel's test run); the entry
	// phase sees the zeroed return slot, the exit phase the return value.
	if len(got.Calls) != 2 || got.Retval != 2 {
		t.Fatalf("%s", out)
	}
	for i, want := range []struct {
		phase    string
		isReturn int
		ret      uint64
	}{{"entry", 0, 0}, {"exit", 1, 2}} {
		c := got.Calls[i]
		if c.Prog != "s" || c.Phase != want.phase || c.Order != i || len(c.Args) != 1 || c.Args[0] != 1 ||
			c.IsReturn != want.isReturn || c.Ret == nil || *c.Ret != want.ret {
			t.Errorf("call %d: %+v", i, c)
		}
	}
	if code, _, _ := runTramp("emu"); code != exitUsage {
		t.Errorf("no case: code %d", code)
	}
	if code, _, _ := runTramp("emu", p, "--arch", "ppc64le"); code != exitUsage {
		t.Errorf("ppc64le: code %d", code)
	}
	// s390x: Debian's build has no JIT (nothing attaches), the z196
	// rebuild of its source does.
	code, out, e = runTramp("emu", p, "--arch", "s390x", "--kernel", "debian-7.2.13+z196", "--json")
	if code != exitOK || !strings.Contains(out, `"phase": "exit"`) {
		t.Errorf("s390x on debian-7.2.13+z196: code %d: %s\n%s", code, e, out)
	}
}

func TestEmuTableAndTrace(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test3\nprog e fentry\nprog x fexit\nattach e\nattach x\nrun 7 8 9\n")
	for _, a := range []string{"x86_64", "arm64"} {
		code, out, e := runTramp("emu", p, "--arch", a, "--trace")
		if code != exitOK {
			t.Fatalf("%s: code %d: %s\n%s", a, code, e, out)
		}
		for _, want := range []string{"bpf_fentry_test3(0x7, 0x8, 0x9)", "retval 0x7e57", "checks: all passed", "<bpf_func:x>", "[0x7 0x8 0x9]"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", a, want, out)
			}
		}
	}
}
