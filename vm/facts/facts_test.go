package facts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/recording"
)

// fakeImage writes an arm64 Image whose BTF states the given slot limit
// and attach types, with a release banner.
func fakeImage(t *testing.T, release string, slots uint64, attach []string) string {
	t.Helper()
	var vals []btf.EnumValue
	for i, n := range attach {
		vals = append(vals, btf.EnumValue{Name: n, Value: uint64(24 + i)})
	}
	b, err := btf.NewBuilder([]btf.Type{
		&btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "BPF_MAX_TRAMP_LINKS", Value: slots}}},
		&btf.Enum{Name: "bpf_attach_type", Size: 4, Values: vals},
	}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, nil)
	require.NoError(t, err)
	img := make([]byte, 64)
	copy(img[0x38:], "ARM\x64")
	img = append(img, "Linux version "+release+" (debian-kernel@lists.debian.org)\x00"...)
	img = append(img, raw...)
	p := filepath.Join(t.TempDir(), "vmlinuz")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	return p
}

func TestReadFakeImage(t *testing.T) {
	img := fakeImage(t, "7.2.13+deb14-cloud-arm64", 27, []string{"BPF_TRACE_FENTRY", "BPF_TRACE_FEXIT", "BPF_MODIFY_RETURN", "BPF_TRACE_FSESSION"})
	cfg := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(cfg, []byte("CONFIG_FUNCTION_ERROR_INJECTION=y\n# CONFIG_ARM64_BTI_KERNEL is not set\n"), 0o644))
	k, err := Read(img, cfg, kernels.ARM64)
	require.NoError(t, err)
	assert.Equal(t, 27, k.SlotLimit)
	p, err := k.Profile("x")
	require.NoError(t, err)
	a, err := trampoline.LookupArch("arm64")
	require.NoError(t, err)
	assert.Equal(t, 27, p.SlotLimit(a), "the slot limit comes from BTF")
	assert.True(t, p.Fsession)
	assert.True(t, p.ErrorInjection, "error injection comes from the config")
	assert.True(t, p.SkipNOP)
	assert.Equal(t, "7.2.13", p.Version)
	assert.Contains(t, k.Table(), "BPF_MAX_TRAMP_LINKS")

	// The same build without fsession in its BTF has no func_meta, whatever
	// its version says.
	img = fakeImage(t, "7.2.13+deb14-cloud-arm64", 38, []string{"BPF_TRACE_FENTRY"})
	k, err = Read(img, "", kernels.ARM64)
	require.NoError(t, err)
	p, err = k.Profile("y")
	require.NoError(t, err)
	assert.False(t, p.Fsession)
	assert.False(t, p.FuncMeta)
	assert.False(t, p.ErrorInjection, "assumed absent without a config")
	var assumed int
	for _, f := range k.Facts {
		if f.Source == Assumed {
			assumed++
		}
	}
	assert.Positive(t, assumed, "facts without a config are marked assumed")
}

// What a recording carries (Stated, through JSON) makes the same profile
// and the same facts as the image and config it was read from.
func TestStatedRoundTrip(t *testing.T) {
	img := fakeImage(t, "7.1.8+deb13-cloud-arm64", 38, []string{"BPF_TRACE_FENTRY", "BPF_TRACE_FEXIT", "BPF_MODIFY_RETURN", "BPF_TRACE_FSESSION"})
	cfg := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(cfg, []byte("CONFIG_FUNCTION_ERROR_INJECTION=y\nCONFIG_ARM64_BTI_KERNEL=y\n"), 0o644))
	for _, config := range []string{cfg, ""} {
		k, err := Read(img, config, kernels.ARM64)
		require.NoError(t, err)
		raw, err := json.Marshal(k.Stated())
		require.NoError(t, err)
		var st recording.StatedFacts
		require.NoError(t, json.Unmarshal(raw, &st))
		back, err := FromStated(k.Release, kernels.ARM64, &st)
		require.NoError(t, err)
		want, err := k.Profile("b")
		require.NoError(t, err)
		got, err := back.Profile("b")
		require.NoError(t, err)
		assert.Equal(t, want, got, "config %q", config)
		// The same facts but the release's source.
		for i := range k.Facts {
			if k.Facts[i].Name == "release" {
				k.Facts[i].Where = back.Facts[i].Where
			}
		}
		assert.Equal(t, k.Facts, back.Facts, "config %q", config)
	}
	_, err := FromStated("7.2.13", kernels.ARM64, nil)
	require.ErrorContains(t, err, "no stated facts")
	_, err = FromStated("7.2.13", kernels.ARM64, &recording.StatedFacts{})
	require.ErrorContains(t, err, "BPF_MAX_TRAMP_LINKS 0")
}

func TestReadRefusesImageWithoutSlotLimit(t *testing.T) {
	img := fakeImage(t, "7.2.13", 0, nil)
	// Rewrite the enum value's name so BPF_MAX_TRAMP_LINKS is gone.
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	i := bytesIndex(b, "BPF_MAX_TRAMP_LINKS")
	require.Positive(t, i)
	b[i] = 'X'
	require.NoError(t, os.WriteFile(img, b, 0o644))
	_, err = Read(img, "", kernels.ARM64)
	require.ErrorContains(t, err, "no enum value BPF_MAX_TRAMP_LINKS")
}

func bytesIndex(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// TestFactsAgreeWithProfiles reads the facts of every cached Debian build
// tramp has a live profile for and holds the profile they make equal to
// the named profile, field by field: the slot limit stated by BTF is the
// one the model uses. With TRAMP_VM=1 (make unit, after scripts/setup)
// the kernels of the VM suite must be cached.
func TestFactsAgreeWithProfiles(t *testing.T) {
	if os.Getenv("TRAMP_VM") != "1" {
		t.Skip("set TRAMP_VM=1 (after scripts/setup) to read the cached Debian kernels")
	}
	f := &kernels.Fetcher{Offline: true}
	seen := 0
	for _, kp := range kernels.Profiles() {
		want, err := trampoline.LookupProfile(kp.Name)
		require.NoError(t, err)
		for _, a := range kernels.Arches {
			k, err := f.Cached(kp.Name, a)
			if err != nil {
				t.Logf("%s %s not cached", kp.Name, a)
				continue
			}
			seen++
			kf, err := Read(k.Path, k.Config, a)
			require.NoError(t, err)
			got, err := kf.Profile(kp.Name)
			require.NoError(t, err)
			ta, err := trampoline.LookupArch(string(a))
			require.NoError(t, err)
			name := kp.Name + " " + string(a)
			assert.Equal(t, want.SlotLimit(ta), got.SlotLimit(ta), "%s: slot limit", name)
			assert.Equal(t, want.Fsession, got.Fsession, "%s: fsession", name)
			assert.Equal(t, want.FuncMeta, got.FuncMeta, "%s: func_meta", name)
			assert.Equal(t, want.SkipNOP, got.SkipNOP, "%s: skip NOP", name)
			assert.Equal(t, want.IPAfterCallNOP, got.IPAfterCallNOP, "%s: ip_after_call NOP", name)
			assert.Equal(t, want.X86WideArgSlots, got.X86WideArgSlots, "%s: wide arg slots", name)
			assert.Equal(t, want.ErrorInjection, got.ErrorInjection, "%s: error injection", name)
			assert.Equal(t, want.SyscallPrefixArches, got.SyscallPrefixArches, "%s: syscall wrappers", name)
			assert.Equal(t, want.A64MovIsAdd, got.A64MovIsAdd, "%s: A64_MOV", name)
			if a == kernels.X86_64 {
				assert.Equal(t, want.X86JmpMode, got.X86JmpMode, "%s: jmp mode", name)
			}
			if kf.Config != nil {
				assert.Equal(t, ta.NoJIT, !kf.ConfigOn("CONFIG_BPF_JIT"), "%s: the arch model's NoJIT against CONFIG_BPF_JIT", name)
				assert.Equal(t, want.HasJIT(ta), got.HasJIT(ta), "%s: the JIT, table profile against the config", name)
			}
		}
	}
	// The VM suite's kernels (Makefile VM_KERNELS) on both arches.
	assert.GreaterOrEqual(t, seen, 4, "cached builds read")
}
