package kernels

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDetectReleaseFromCachedKernels(t *testing.T) {
	f := &Fetcher{}
	n := 0
	for _, p := range Profiles() {
		for _, a := range []Arch{X86_64, ARM64} {
			k, err := f.Cached(p.Name, a)
			if err != nil || k == nil {
				continue
			}
			rel, err := DetectRelease(k.Path)
			if err != nil {
				t.Errorf("%s %s: %v", p.Name, a, err)
				continue
			}
			maj, min, pat, ok := ParseRelease(rel)
			if !ok || p.Name != fmt.Sprintf("debian-%d.%d.%d", maj, min, pat) {
				t.Errorf("%s %s: release %q", p.Name, a, rel)
			}
			n++
		}
	}
	if n == 0 {
		if os.Getenv("TRAMP_VM") == "1" {
			t.Fatal("no cached kernel to read a release from")
		}
		t.Skip("no cached kernels (TRAMP_VM=1 after scripts/setup runs this)")
	}
}

func TestDetectReleaseErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(p, []byte("not a kernel"), 0o644)
	if _, err := DetectRelease(p); err == nil {
		t.Fatal("junk accepted")
	}
	if _, _, _, ok := ParseRelease("x.y"); ok {
		t.Fatal("bad release parsed")
	}
}
