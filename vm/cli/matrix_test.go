package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
)

func TestMatrixAndJSON(t *testing.T) {
	p72, err := trampoline.LookupProfile("debian-7.2.13")
	require.NoError(t, err)
	p618, err := trampoline.LookupProfile("debian-6.18.15")
	require.NoError(t, err)
	res := func(p *trampoline.Profile, a kernels.Arch, verdicts ...string) *suiteRun {
		r := &suiteRun{profile: p, arch: a}
		for i, v := range verdicts {
			r.cases = append(r.cases, nil)
			r.results = append(r.results, caseResult{Kernel: p.Name, Arch: string(a), Case: string(rune('a' + i)), Result: v})
		}
		return r
	}
	runs := []*suiteRun{
		res(p72, kernels.X86_64, "ok", "ok", "not in kernel"),
		res(p72, kernels.ARM64, "ok", "MISMATCH"),
		res(p618, kernels.X86_64, "ok"),
	}
	var b strings.Builder
	writeMatrix(&b, runs)
	want := `
build (passed/failed/skipped)  x86_64                arm64               
debian-7.2.13                  2/0/1                 1/1/0               
debian-6.18.15                 1/0/0                 -                   

`
	assert.Equal(t, want, b.String())
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, writeJSON(path, nil, runs))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var back []struct {
		Kernel string       `json:"kernel"`
		Arch   string       `json:"arch"`
		Cases  []caseResult `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &back))
	require.Len(t, back, 3)
	assert.Equal(t, "MISMATCH", back[1].Cases[1].Result)
	assert.Equal(t, "debian-6.18.15", back[2].Kernel)
}
