package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{nil, ExitUsage, "usage: tramp vm"},
		{[]string{"bogus"}, ExitUsage, `unknown command "bogus"`},
		{[]string{"--help"}, ExitOK, "fetch"},
		{[]string{"fetch", "--help"}, ExitOK, "-kernel"},
		{[]string{"vm", "hello", "--help"}, ExitOK, "-timeout"},
		{[]string{"fetch", "--kernel", "nonsense"}, ExitUsage, "not a served build name"},
		{[]string{"fetch", "--arch", "sparc"}, ExitUsage, "unknown architecture"},
		{[]string{"fetch", "--nope"}, ExitUsage, "flag provided but not defined"},
		{[]string{"hello", "extra"}, ExitUsage, "unexpected argument"},
		{[]string{"hello", "--kernel", "/no/such/bzImage"}, ExitUsage, "unknown kernel profile"},
		{[]string{"hello", "--accel", "hvf"}, ExitUsage, "--accel"},
	}
	for _, c := range cases {
		code, out, errs := run(c.args...)
		if code != c.code || !strings.Contains(out+errs, c.out) {
			t.Errorf("%q: code %d, output %q; want %d and %q", c.args, code, out+errs, c.code, c.out)
		}
	}
}

func TestHelloVM(t *testing.T) {
	if os.Getenv("TRAMP_VM") != "1" {
		t.Skip("set TRAMP_VM=1 to boot kernels under QEMU")
	}
	code, out, errs := run("hello", "--arch", "x86_64,arm64")
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	if code != ExitOK || strings.Count(out, ": ok\n") != 2 || !strings.Contains(out, "start→hello") {
		t.Fatalf("code %d", code)
	}
}
