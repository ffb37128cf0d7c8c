package trampoline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeltasReproduceProfiles: the delta table, applied to the release of
// each profile that was measured or read, gives that profile's fields, so
// the table and the profiles cannot drift apart. A profile is held to
// an arch where the build table judges a build of that arch in the
// profile's stable branch: a profile's fields are for the arches its
// branch was measured on (riscv64 has no 6.18 build, for one).
func TestDeltasReproduceProfiles(t *testing.T) {
	type branch struct {
		arch         string
		major, minor int
	}
	judged := map[branch]bool{}
	for _, r := range Builds.Rows {
		judged[branch{r.Arch, r.Version.Major, r.Version.Minor}] = true
	}
	n := 0
	for _, want := range Profiles() {
		v := MustVersion(want.Version)
		for _, arch := range DefaultArches() {
			if judged[branch{arch, v.Major, v.Minor}] {
				deltasReproduce(t, want, arch)
				n++
			}
		}
	}
	require.GreaterOrEqual(t, n, 2*len(Profiles()), "x86_64 and arm64 are judged in every profile's branch")
}

func deltasReproduce(t *testing.T, want *Profile, arch string) {
	{
		got := *want
		// Clear what the deltas decide, then let them decide it.
		got.FuncMeta, got.A64MovIsAdd, got.X86WideArgSlots, got.SkipNOP, got.IPAfterCallNOP = false, false, false, false, false
		got.SyscallPrefixArches = []string{"sentinel"}
		applied, err := ApplyDeltas(&got, want.Version, arch)
		if arch != "x86_64" {
			got.X86JmpMode, got.X86WideArgSlots = want.X86JmpMode, want.X86WideArgSlots // x86-only deltas: moot here
		}
		if arch != "arm64" {
			got.A64MovIsAdd = want.A64MovIsAdd
		}
		require.NoError(t, err)
		for _, a := range applied {
			if want.ErrorInjection && a.Delta.Name == "syscall-wrapper-fallback" {
				continue // moot with error injection (below)
			}
			if !a.Delta.AppliesTo(arch) {
				continue
			}
			assert.True(t, a.Pinned, "%s %s: delta %s not pinned: %s", want.Name, arch, a.Delta.Name, a.Note)
		}
		if want.ErrorInjection {
			// The source profile's config has error injection; the
			// syscall-wrapper fallback is then moot.
			got.SyscallPrefixArches = want.SyscallPrefixArches
		}
		if diff := cmp.Diff(want, &got); diff != "" {
			t.Errorf("%s %s: deltas for %s differ from the profile (-profile +deltas):\n%s", want.Name, arch, want.Version, diff)
		}
	}
}

func TestApplyDeltasUnpinned(t *testing.T) {
	// Every served build is in the table; 6.15 never was served, and its
	// branch has no row. The merge-window deltas are absent before their
	// LastWithout; only the backported skip-nop could have reached 6.15
	// stable, so it alone is assumed (from the nearest judged build) and
	// says so.
	var p Profile
	applied, err := ApplyDeltas(&p, "6.15.3+deb13-cloud-amd64", "x86_64")
	require.NoError(t, err)
	var notes []string
	for _, a := range applied {
		if !a.Pinned && a.Delta.AppliesTo("x86_64") {
			notes = append(notes, a.Delta.Name)
			assert.NotEmpty(t, a.Note, a.Delta.Name)
		}
	}
	assert.Equal(t, []string{"skip-nop"}, notes)
	assert.False(t, p.SkipNOP, "as 6.12.117, the newest older judged build")
	assert.False(t, p.X86JmpMode, "as 6.12.117")

	// A build newer than the table gets the newest known layout.
	applied, err = ApplyDeltas(&p, "7.4.2", "arm64")
	require.NoError(t, err)
	assert.True(t, p.SkipNOP)
	assert.False(t, p.A64MovIsAdd)
	assert.Nil(t, p.SyscallPrefixArches)
	for _, a := range applied {
		if a.Delta.Name == "a64-mov-orr" {
			assert.Contains(t, a.Note, "Since")
		}
	}
}

func TestVersionOrder(t *testing.T) {
	order := []string{"6.12.117", "6.18.15", "7.0", "7.2.9", "7.2.13+deb14", "7.3-rc7", "7.3~rc8", "7.3", "7.3.4"}
	for i := range order {
		for j := range order {
			vi, vj := MustVersion(order[i]), MustVersion(order[j])
			assert.Equal(t, i < j, vi.Less(vj), "%s < %s", order[i], order[j])
		}
	}
	for _, bad := range []string{"", "x7", "7", "7.", "7.2.", "7.3-rc"} {
		_, err := ParseVersion(bad)
		assert.Error(t, err, "%q", bad)
	}
}
