package x86

import (
	"testing"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

func planOf(t *testing.T, profile, src string) *trampoline.Plan {
	t.Helper()
	c, err := cases.Parse("t.tramp", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := trampoline.LookupProfile(profile)
	a, _ := trampoline.LookupArch("x86_64")
	res, err := cases.Replay(c, p, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Final.HasImage() {
		t.Fatal("no image")
	}
	return res.Final.Plan()
}

// Code lengths that the facts sheet (shared/reference) reports from live
// 7.2.13 images whose scenario it states exactly. Byte-exact comparison
// against our own recordings lives in the record tests.
func TestLiveCodeLengths(t *testing.T) {
	tests := []struct {
		name, src string
		want      int
	}{
		{"fsession cookie", "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n", 266},
		{"fsession cookie ip", "target bpf_fentry_test1\nprog s fsession cookie ip\nattach s\n", 277},
		{"fsession+fmod_ret", "target bpf_modify_return_test\nprog s fsession cookie\nprog m fmod_ret\nattach m\nattach s\n", 379},
	}
	for _, tc := range tests {
		p := planOf(t, "debian-7.2.13", tc.src)
		im, err := Generate(p, Debian, arch.PlaceholderAddrs(p))
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Code) != tc.want {
			t.Errorf("%s: %d bytes, live kernel had %d", tc.name, len(im.Code), tc.want)
		}
	}
}
