package kernels

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEditConfig(t *testing.T) {
	in := "CONFIG_MARCH_Z10=y\n# CONFIG_MARCH_Z196 is not set\nCONFIG_FOO=m\nCONFIG_MODULES=y\n# comment\nCONFIG_STR=\"x\"\n"
	got := string(EditConfig([]byte(in), []Option{
		{"CONFIG_MARCH_Z10", ""}, {"CONFIG_MARCH_Z196", "y"}, {"CONFIG_STR", `""`}, {"CONFIG_NEW", "y"},
	}))
	assert.Equal(t, "# CONFIG_MARCH_Z10 is not set\nCONFIG_MARCH_Z196=y\nCONFIG_FOO=m\nCONFIG_MODULES=y\n# comment\nCONFIG_STR=\"\"\nCONFIG_NEW=y\n", got,
		"options replaced in place, =m and the rest kept, new options appended")
	got = string(EditConfig([]byte(in), nil))
	assert.Equal(t, in, got, "nothing to change")
}

func TestReleaseSeries(t *testing.T) {
	for rel, want := range map[string]string{"7.2.13+deb14-s390x": "7.2", "6.12.107+deb13-cloud-amd64": "6.12", "7.3-rc7": "7.3", "7.3.0-rc7-s390x": "7.3"} {
		got, err := releaseSeries(rel)
		require.NoError(t, err, rel)
		assert.Equal(t, want, got, rel)
	}
	for _, bad := range []string{"", "seven", "x.2.3", "7"} {
		_, err := releaseSeries(bad)
		assert.Error(t, err, bad)
	}
}

func TestRebuildsAreNamedForTheirBase(t *testing.T) {
	for _, r := range Rebuilds {
		assert.True(t, IsBuildName(r.Name) && IsRebuildName(r.Name), r.Name)
		assert.Contains(t, r.Name, r.Base+"+", "a rebuild's name is its base build's and a suffix")
		tgt, ok := rebuildTargets[r.Arch]
		assert.True(t, ok, "%s: a recipe for %s", r.Name, r.Arch)
		if r.ConfigFrom != "" {
			assert.True(t, IsBuildName(r.ConfigFrom), "%s: ConfigFrom %q names a served build", r.Name, r.ConfigFrom)
		}
		if r.Toolchain != "" {
			assert.Contains(t, toolchainPackages, "gcc-"+strings.TrimSuffix(tgt.cross, "-"), "%s: the %s toolchain has its cross compiler", r.Name, r.Toolchain)
		}
	}
}

// apt-get download names the .deb name_version_arch.deb whatever form
// the argument took; a pinned version once made the glob miss it.
func TestDebPackageName(t *testing.T) {
	for arg, want := range map[string]string{
		"linux-source-7.3=7.3.4-1~bpo13+1":         "linux-source-7.3",
		"linux-binary-7.2.13+deb14-s390x:s390x":    "linux-binary-7.2.13+deb14-s390x",
		"linux-config-7.3:riscv64=7.3.4-1~bpo13+1": "linux-config-7.3",
		"dwarves": "dwarves",
	} {
		assert.Equal(t, want, debPackageName(arg), arg)
	}
}
