package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
)

// The generated cases are deterministic per seed, parse, replay, and reach
// the slot limit (E2BIG) on both arches.
func TestFuzzCase(t *testing.T) {
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	for _, an := range []string{"x86_64", "arm64"} {
		a, _ := trampoline.LookupArch(an)
		for seed := int64(1); seed <= 5; seed++ {
			src := FuzzCase(seed, 150, prof, a)
			if src != FuzzCase(seed, 150, prof, a) {
				t.Fatalf("seed %d: not deterministic", seed)
			}
			c, err := cases.Parse("f.tramp", []byte(src))
			if err != nil {
				t.Fatalf("seed %d: %v\n%s", seed, err, src)
			}
			res, err := cases.Replay(c, prof, a, generators.SizeFunc(an))
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			full := false
			for _, o := range res.Ops {
				if o.Result == "E2BIG" {
					full = true
				}
				if o.Slots > prof.SlotLimit(a) {
					t.Fatalf("seed %d: %d slots", seed, o.Slots)
				}
			}
			if !full {
				t.Errorf("%s seed %d: never reached the slot limit", an, seed)
			}
		}
	}
}

func TestModelProfile(t *testing.T) {
	f := &kernels.Fetcher{Offline: true}
	var log strings.Builder
	got, _, err := modelProfile(context.Background(), f, "debian-7.2.13", "", kernels.Arches, &log)
	require.NoError(t, err)
	want, err := trampoline.LookupProfile("debian-7.2.13")
	require.NoError(t, err)
	assert.Same(t, want, got[kernels.X86_64], "a build with a table profile keeps it")
	got, _, err = modelProfile(context.Background(), f, "/nonexistent/vmlinuz", "", kernels.Arches, &log)
	assert.Nil(t, got)
	assert.ErrorContains(t, err, "neither a served build")
	got, _, err = modelProfile(context.Background(), f, "/nonexistent/vmlinuz", "linux-7.2.8", kernels.Arches, &log)
	require.NoError(t, err)
	assert.Equal(t, "linux-7.2.8", got[kernels.ARM64].Name, "--profile overrides")
}
