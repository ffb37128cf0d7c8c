package cli

import (
	"testing"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
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

func TestProfileForRelease(t *testing.T) {
	for rel, want := range map[string]string{
		"7.2.13+deb14-cloud-amd64": "debian-7.2.13",
		"7.3.4+deb13-cloud-arm64":  "debian-7.3.4",
		"7.4.1":                    "debian-7.2.13",
		"7.2.9-custom":             "linux-7.2.8",
		"7.0.0":                    "linux-7.2.8",
		"6.19.8":                   "debian-6.18.15",
		"garbage":                  "debian-7.2.13",
	} {
		if got, _ := profileForRelease(rel); got != want {
			t.Errorf("%s: %s, want %s", rel, got, want)
		}
	}
}
