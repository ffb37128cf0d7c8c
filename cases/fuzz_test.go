package cases

import (
	"strings"
	"testing"

	"github.com/bpftramp/tramp/trampoline"
)

// FuzzParse: any input either parses or gives a positioned error; a case
// that parses replays on every profile and arch without panicking.
func FuzzParse(f *testing.F) {
	names, _ := corpusFS.ReadDir(".")
	for _, n := range names {
		src, err := corpusFS.ReadFile(n.Name())
		if err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte(strings.Replace(specExample, "TARGET", "target bpf_fentry_test3", 1)))
	f.Add([]byte("target f(u8, s32, u64, struct12, ptr) -> u64 bpf-prog tail-call\nprog r freplace\nattach r\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.tramp", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.tramp:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		// Every case Parse accepts formats to text that parses back to it.
		text := Format(c)
		back, err := Parse("fuzz.tramp", text)
		if err != nil {
			t.Fatalf("Format gave text Parse refuses: %v\n%s", err, text)
		}
		if d := sameCase(c, back); d != "" {
			t.Fatalf("parse∘format changed the case:\n%s\n%s", d, text)
		}
		for _, p := range trampoline.Profiles() {
			for _, a := range trampoline.Arches() {
				_, _ = Replay(c, p, a, nil)
			}
		}
	})
}
