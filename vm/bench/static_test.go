package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/static_costs.json from the emulator (read the diff before committing)")

const staticGolden = "testdata/static_costs.json"

// marshalStatic is the checked-in form of the static costs.
func marshalStatic(s *StaticCosts) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(s)
	return buf.Bytes(), err
}

// TestStaticCosts fails when what a configuration's trampoline executes
// per invocation changes without testdata/static_costs.json being
// updated (go test ./vm/bench -run TestStaticCosts -update).
func TestStaticCosts(t *testing.T) {
	got, err := Static()
	require.NoError(t, err)
	b, err := marshalStatic(got)
	require.NoError(t, err)
	if *update {
		if err := os.WriteFile(staticGolden, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", staticGolden)
		return
	}
	old, err := os.ReadFile(staticGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want StaticCosts
	if err := json.Unmarshal(old, &want); err != nil {
		t.Fatalf("%s: %v", staticGolden, err)
	}
	key := func(r StaticRow) string { return r.Config + "/" + r.Arch }
	wantRows := map[string]StaticRow{}
	for _, r := range want.Rows {
		wantRows[key(r)] = r
	}
	for _, r := range got.Rows {
		w, ok := wantRows[key(r)]
		switch {
		case !ok:
			t.Errorf("%s: not in %s (run with -update)", key(r), staticGolden)
		case r != w:
			t.Errorf("%s changed: insns %d -> %d, loads %d -> %d, stores %d -> %d, calls %d -> %d, branches %d -> %d, bytes %d -> %d, program runs %d -> %d (run with -update and read the diff)",
				key(r), w.Insns, r.Insns, w.Loads, r.Loads, w.Stores, r.Stores, w.Calls, r.Calls, w.Branches, r.Branches, w.CodeBytes, r.CodeBytes, w.ProgRuns, r.ProgRuns)
		}
		delete(wantRows, key(r))
	}
	for k := range wantRows {
		t.Errorf("%s: in %s but no longer computed (run with -update)", k, staticGolden)
	}
	if !t.Failed() && !bytes.Equal(old, b) {
		t.Errorf("%s differs from the computed costs outside the rows (kernel, prototype or note); run with -update", filepath.Base(staticGolden))
	}
}

// TestStaticInvariants checks relations the static costs must keep
// whatever the generators do: no program costs nothing, every program
// runs once per invocation (fsession twice), more fentry programs cost
// more, and fsession runs its one program in both phases.
func TestStaticInvariants(t *testing.T) {
	s, err := Static()
	require.NoError(t, err)
	get := func(cfg, arch string) StaticRow {
		for _, r := range s.Rows {
			if r.Config == cfg && r.Arch == arch {
				return r
			}
		}
		t.Fatalf("no row %s/%s", cfg, arch)
		return StaticRow{}
	}
	for _, a := range StaticArches {
		if r := get("none", a); r.Insns != 0 || r.CodeBytes != 0 {
			t.Errorf("%s: none executes %d instructions", a, r.Insns)
		}
		for _, cfg := range []string{"fentry", "fexit", "fmod_ret", "fentry-x2", "fentry-x4", "fentry-x8", "fentry+fexit"} {
			if r := get(cfg, a); r.ProgRuns != r.Progs {
				t.Errorf("%s %s: %d programs ran %d times", a, cfg, r.Progs, r.ProgRuns)
			}
		}
		for _, cfg := range []string{"fsession", "fsession-cookie"} {
			if r := get(cfg, a); r.ProgRuns != 2 {
				t.Errorf("%s %s: the program ran %d times, want 2", a, cfg, r.ProgRuns)
			}
		}
		prev := 0
		for _, cfg := range []string{"fentry", "fentry-x2", "fentry-x4", "fentry-x8"} {
			r := get(cfg, a)
			if r.Insns <= prev {
				t.Errorf("%s %s: %d instructions, not more than with fewer programs (%d)", a, cfg, r.Insns, prev)
			}
			prev = r.Insns
		}
		if c, p := get("fsession-cookie", a), get("fsession", a); c.Stores <= p.Stores {
			t.Errorf("%s: fsession-cookie stores %d, fsession %d: the cookie slot is not zeroed", a, c.Stores, p.Stores)
		}
	}
}

// BenchmarkStatic is the cost of computing every static row (generate
// and emulate 10 configurations on 2 arches).
func BenchmarkStatic(b *testing.B) {
	for b.Loop() {
		if _, err := Static(); err != nil {
			b.Fatal(err)
		}
	}
}
