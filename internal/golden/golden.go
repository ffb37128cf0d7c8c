package golden

import (
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the tests produce (read the diff before committing)")

// Check compares got with the file at path (relative to the test's
// working directory). With -update it writes got there instead. rerun is
// the command that rewrites the file, for the failure message.
func Check(t testing.TB, path, got, rerun string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s -update writes it)", err, rerun)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got); if the change is meant, %s -update rewrites it:\n%s", path, rerun, d)
	}
}
