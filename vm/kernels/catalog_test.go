package kernels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/catalog/madison.txt is "apt-cache madison" for every kernel
// package of CatalogSuites in the flavours tramp boots (cloud-amd64,
// cloud-arm64, riscv64, s390x), as the archive served it on 2026-12-03
// (mirror host replaced).
func loadCatalog(t *testing.T) []Build {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "catalog", "madison.txt"))
	require.NoError(t, err)
	return ParseCatalog(b)
}

func TestParseCatalog(t *testing.T) {
	cat := loadCatalog(t)
	byName := map[string]Build{}
	for _, b := range cat {
		byName[b.Name+"/"+string(b.Arch)] = b
	}
	// The named profiles keep their names and packages.
	for _, p := range profiles {
		for _, a := range DefaultArches {
			b, ok := byName[p.Name+"/"+string(a)]
			if assert.True(t, ok, "%s %s in the catalog", p.Name, a) {
				assert.Equal(t, p.Package(a), b.Package)
			}
		}
	}
	// riscv64 and s390x have no cloud flavour: the arch's own. Debian
	// builds no 6.18 for them.
	assert.Equal(t, "linux-binary-7.2.13+deb14-riscv64", byName["debian-7.2.13/riscv64"].Package)
	assert.Equal(t, "linux-binary-7.3.4+deb13-riscv64", byName["debian-7.3.4/riscv64"].Package)
	assert.Equal(t, "linux-binary-7.2.13+deb14-s390x", byName["debian-7.2.13/s390x"].Package)
	assert.NotContains(t, byName, "debian-6.18.15/riscv64")
	// 7.x builds have a linux-binary package, which holds the image.
	assert.Equal(t, "linux-binary-7.2.13+deb14-cloud-amd64", byName["debian-7.2.13/x86_64"].Package)
	assert.Equal(t, []string{"sid"}, byName["debian-7.2.13/x86_64"].Suites)
	// 6.12 in trixie has only linux-image.
	b := byName["debian-6.12.117/x86_64"]
	assert.Equal(t, "linux-image-6.12.117+deb13-cloud-amd64", b.Package)
	assert.Equal(t, []string{"trixie"}, b.Suites)
	// Two builds of 7.2.12: sid's +deb14 takes the plain name.
	assert.Equal(t, "7.2.12+deb14", byName["debian-7.2.12/arm64"].ABI)
	assert.Equal(t, "7.2.12+deb13", byName["debian-7.2.12+deb13/arm64"].ABI)
	// experimental's release candidate.
	rc := byName["debian-7.3-rc7/x86_64"]
	assert.Equal(t, "7.3", rc.ABI)
	assert.Equal(t, []string{"experimental"}, rc.Suites)
	// Sorted by version; every build is named once per arch.
	seen := map[string]bool{}
	for i, b := range cat {
		k := b.Name + "/" + string(b.Arch)
		assert.False(t, seen[k], "%s twice", k)
		seen[k] = true
		if i > 0 {
			assert.False(t, versionLess(b.ABI, cat[i-1].ABI), "%s after %s", b.ABI, cat[i-1].ABI)
		}
	}
	assert.GreaterOrEqual(t, len(cat), 50)
}

func TestSelect(t *testing.T) {
	cat := loadCatalog(t)
	got, err := Select(cat, []string{"debian-7.2.*"})
	require.NoError(t, err)
	var names []string
	for _, b := range got {
		if b.Arch == X86_64 {
			names = append(names, b.Name)
		}
	}
	assert.Equal(t, []string{"debian-7.2.6", "debian-7.2.9", "debian-7.2.11", "debian-7.2.12+deb13", "debian-7.2.12", "debian-7.2.13"}, names)
	all, err := Select(cat, []string{"all", "debian-7.2.13"})
	require.NoError(t, err)
	assert.Len(t, all, len(cat), "all, and no duplicates")
	_, err = Select(cat, []string{"debian-7.2.99"})
	require.ErrorContains(t, err, `no served build matches "debian-7.2.99"`)
	require.ErrorContains(t, err, "debian-7.2.9")
}

func TestUpstreamVersion(t *testing.T) {
	for deb, want := range map[string]string{"7.2.13-1": "7.2.13", "7.3~rc7-1~exp1": "7.3-rc7", "7.3.4-1~bpo13+1": "7.3.4", "1:6.12.117-1": "6.12.117"} {
		assert.Equal(t, want, upstreamVersion(deb), deb)
	}
}

// FuzzParseCatalog: any apt-cache output gives builds that are named,
// unique per arch, and hold an image package of their arch's flavour.
func FuzzParseCatalog(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "catalog", "madison.txt"))
	require.NoError(f, err)
	f.Add(b[:2000])
	f.Add([]byte("linux-binary-7.3-cloud-amd64 | 7.3~rc7-1~exp1 | http://m experimental/main amd64 Packages\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		seen := map[string]bool{}
		for _, b := range ParseCatalog(in) {
			require.True(t, IsBuildName(b.Name), "%q", b.Name)
			k := b.Name + "/" + string(b.Arch)
			require.False(t, seen[k], "%s twice", k)
			seen[k] = true
			require.True(t, strings.HasSuffix(b.Package, b.ABI+"-"+b.Arch.Flavour()), "%s of %s", b.Package, b.Arch)
			require.NotEmpty(t, b.Suites)
		}
	})
}
