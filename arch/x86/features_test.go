package x86

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
)

// The states debian-7.2.13 showed under QEMU TCG (cases/testdata), and
// the thunk its kernel log named ("active return thunk: ...").
var (
	vulnsMax = map[string]string{ // -cpu max
		"retbleed": "Not affected", "spec_rstack_overflow": "Not affected", "indirect_target_selection": "Not affected",
		"spectre_v2": "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Not affected",
	}
	vulnsEPYCRome = map[string]string{ // -cpu EPYC-Rome, family 0x17: retbleed_return_thunk
		"retbleed":                  "Mitigation: untrained return thunk; SMT disabled",
		"spec_rstack_overflow":      "Mitigation: SMT disabled",
		"indirect_target_selection": "Not affected",
	}
	vulnsCascadelake = map[string]string{ // -cpu Cascadelake-Server: its_return_thunk
		"retbleed":                  "Vulnerable",
		"spec_rstack_overflow":      "Not affected",
		"indirect_target_selection": "Mitigation: Aligned branch/return thunks",
	}
	vulnsEPYCMilan = map[string]string{ // -cpu EPYC-Milan, family 0x19: srso_alias_return_thunk
		"retbleed":                  "Not affected",
		"spec_rstack_overflow":      "Vulnerable: Safe RET, no microcode",
		"indirect_target_selection": "Not affected",
	}
	vulnsSkylakeStuff = map[string]string{ // -cpu Skylake-Client, retbleed=stuff: call_depth_return_thunk
		"retbleed":                  "Mitigation: Stuffing",
		"spec_rstack_overflow":      "Not affected",
		"indirect_target_selection": "Mitigation: Retpolines, Stuffing RSB",
	}
)

func TestForBoot(t *testing.T) {
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name      string
		vulns     map[string]string
		family    int
		rethunk   bool
		thunk     string
		callDepth bool
		err       string
	}{
		{name: "cpu max", vulns: vulnsMax, family: 6},
		{name: "EPYC-Rome", vulns: vulnsEPYCRome, family: 0x17, rethunk: true, thunk: ThunkRetbleed},
		{name: "Cascadelake-Server", vulns: vulnsCascadelake, family: 6, rethunk: true, thunk: ThunkITS},
		{name: "Skylake-Client retbleed=stuff", vulns: vulnsSkylakeStuff, family: 6, rethunk: true, thunk: ThunkCallDepth, callDepth: true},
		// -cpu EPYC-Rome with mitigations=off: plain ret; int3 again.
		{name: "EPYC-Rome mitigations=off", vulns: map[string]string{"retbleed": "Vulnerable", "spec_rstack_overflow": "Vulnerable", "indirect_target_selection": "Not affected"}, family: 0x17},
		{name: "ITS off", vulns: with(vulnsCascadelake, "indirect_target_selection", "Vulnerable"), family: 6},
		{name: "no files (old kernel)", vulns: map[string]string{"spectre_v2": "Vulnerable"}},
		// SRSO's safe RET is applied after retbleed's thunk and replaces it.
		{name: "Zen2 with SMT: safe RET", vulns: with(vulnsEPYCRome, "spec_rstack_overflow", "Mitigation: Safe RET"), family: 0x17, rethunk: true, thunk: ThunkSRSO},
		{name: "EPYC-Milan", vulns: vulnsEPYCMilan, family: 0x19, rethunk: true, thunk: ThunkSRSOAlias},
		{name: "Milan's state on family 0x17", vulns: vulnsEPYCMilan, family: 0x17, rethunk: true, thunk: ThunkSRSO},
		{name: "safe RET, family unknown", vulns: with(vulnsEPYCRome, "spec_rstack_overflow", "Mitigation: Safe RET"), err: "CPU family"},
		// IBPB on entry clears X86_FEATURE_RETHUNK.
		{name: "retbleed IBPB", vulns: with(vulnsEPYCRome, "retbleed", "Mitigation: IBPB; SMT disabled"), family: 0x17},
		{name: "SRSO IBPB after retbleed thunk", vulns: with(vulnsEPYCRome, "spec_rstack_overflow", "Mitigation: IBPB"), family: 0x17},
		{name: "non-AMD unret", vulns: with(vulnsMax, "retbleed", "Vulnerable: untrained return thunk / IBPB on non-AMD based uarch"), err: "does not say"},
		{name: "unknown retbleed state", vulns: with(vulnsMax, "retbleed", "Mitigation: something new"), err: `vulnerabilities/retbleed: state "Mitigation: something new"`},
		{name: "unknown ITS state", vulns: with(vulnsMax, "indirect_target_selection", "Mitigation: ?"), err: "indirect_target_selection"},
		{name: "unknown SRSO state", vulns: with(vulnsMax, "spec_rstack_overflow", "Mitigation: ?"), err: "spec_rstack_overflow"},
	}
	for _, tc := range tests {
		f, err := Debian.ForBoot(Boot{Vulnerabilities: tc.vulns, CPUFamily: tc.family})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if f.Rethunk != tc.rethunk || f.ReturnThunk != tc.thunk || f.CallDepth != tc.callDepth {
			t.Errorf("%s: rethunk %v thunk %q calldepth %v, want %v %q %v", tc.name, f.Rethunk, f.ReturnThunk, f.CallDepth, tc.rethunk, tc.thunk, tc.callDepth)
		}
		if !f.SLS || !f.EndbrAtFunc {
			t.Errorf("%s: the build features were lost: %+v", tc.name, f)
		}
	}
}

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "sls,endbr", want: "endbr,sls"},
		{in: "sls,rethunk", want: "rethunk=x86_return_thunk,sls"},
		{in: "rethunk=its_return_thunk", want: "rethunk=its_return_thunk"},
		{in: "calldepth", want: "calldepth,rethunk=call_depth_return_thunk"},
		{in: " sls , rethunk=retbleed_return_thunk ", want: "rethunk=retbleed_return_thunk,sls"},
		{in: "rethunk=", err: "name the thunk"},
		{in: "sls=1", err: `unknown feature "sls=1"`},
		{in: "ibt", err: `unknown feature "ibt"`},
	}
	for _, tc := range tests {
		f, err := ParseFeatures(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := f.String(); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		back, err := ParseFeatures(f.String())
		if err != nil || back != f {
			t.Errorf("%q: String does not read back: %+v, %v", tc.in, back, err)
		}
	}
}

func TestIsCallThunk(t *testing.T) {
	// debian-7.2.13, -cpu Skylake-Client retbleed=stuff: the padding of
	// __bpf_prog_enter_sleepable_recur (0xffffffff81629730) held a call
	// thunk, that of __bpf_prog_enter_recur did not; __x86_call_depth was
	// at 0xffffffff83dbd020.
	const depth = 0xffffffff83dbd020
	thunk := []byte{0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x65, 0x48, 0xc1, 0x3d, 0xf0, 0x38, 0x79, 0x02, 0x05}
	nops := []byte{0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90}
	if !IsCallThunk(thunk, 0xffffffff81629730, depth) {
		t.Error("the real thunk was not recognised")
	}
	if IsCallThunk(nops, 0xffffffff8162a350, depth) {
		t.Error("NOP padding taken for a thunk")
	}
	if IsCallThunk(thunk, 0xffffffff81629740, depth) {
		t.Error("a thunk relocated for another function was accepted")
	}
	if IsCallThunk(thunk[:8], 0xffffffff81629730, depth) {
		t.Error("short padding accepted")
	}
}

// TestCallDepthAccounting: with call-depth tracking the image starts with
// the template and every call but those to a function with a call thunk
// has one right before it, each relocated to __x86_call_depth; the
// checker insists on both.
func TestCallDepthAccounting(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog e fentry sleepable\nprog x fexit\nattach e\nattach x\n")
	feat, err := ParseFeatures("endbr,sls,calldepth")
	require.NoError(t, err)
	addrs := PlaceholderAddrs(p)
	count := func(im *arch.Image) (templates, calls int) {
		for _, r := range im.Relocs {
			switch r.Kind {
			case arch.RelRIP32Imm8:
				templates++
				if r.Sym != CallDepthVar || r.Value != addrs.Symbols[CallDepthVar] {
					t.Errorf("template relocation %+v", r)
				}
			case arch.RelCall32:
				calls++
			}
		}
		return templates, calls
	}
	im, err := Generate(p, feat, addrs)
	require.NoError(t, err)
	tpl, calls := count(im)
	if calls != 9 || tpl != calls+1 {
		t.Errorf("%d templates for %d calls, want 9 calls (enter, 2x3 for the programs, the original, exit) and a template before each and one at the start", tpl, calls)
	}
	if err := Check(im, addrs.Image, feat); err != nil {
		t.Errorf("checker: %v", err)
	}
	if err := Check(im, addrs.Image, Features{EndbrAtFunc: true, Rethunk: true, ReturnThunk: ThunkCallDepth}); err == nil {
		t.Error("checker accepted templates in an image without call-depth tracking")
	}
	plain, err := Generate(p, Features{EndbrAtFunc: true, Rethunk: true, ReturnThunk: ThunkCallDepth}, addrs)
	require.NoError(t, err)
	if err := Check(plain, addrs.Image, feat); err == nil {
		t.Error("checker accepted an image without the template for call-depth tracking")
	}
	if len(im.Code) != len(plain.Code)+CallThunkLen*tpl {
		t.Errorf("%d bytes with accounting, %d without: want %d templates' difference", len(im.Code), len(plain.Code), tpl)
	}
	// The sleepable program's enter and exit helpers carry call thunks.
	addrs.CallThunks = map[string]bool{"__bpf_prog_enter_sleepable_recur": true, "__bpf_prog_exit_sleepable_recur": true}
	skip, err := Generate(p, feat, addrs)
	require.NoError(t, err)
	if tpl, calls := count(skip); tpl != calls-1 {
		t.Errorf("with two thunked helpers: %d templates for %d calls, want calls-2+1", tpl, calls)
	}
	if err := Check(skip, addrs.Image, feat); err != nil {
		t.Errorf("checker: %v", err)
	}
}

// TestRethunkEnding: a return thunk ends the image with jmp rel32 through
// a relocation naming that thunk; the checker refuses the plain ending,
// another thunk and a missing relocation.
func TestRethunkEnding(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n")
	addrs := PlaceholderAddrs(p)
	feat, err := Debian.ForBoot(Boot{Vulnerabilities: vulnsCascadelake, CPUFamily: 6})
	require.NoError(t, err)
	im, err := Generate(p, feat, addrs)
	require.NoError(t, err)
	sls, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	end := len(im.Code) - 5
	if im.Code[end] != 0xe9 || len(im.Code) != len(sls.Code)+3 {
		t.Fatalf("ending % x (%d bytes; c3 cc ending: %d)", im.Code[end:], len(im.Code), len(sls.Code))
	}
	r, ok := im.RelocAt(end + 1)
	if !ok || r.Sym != ThunkITS || r.Kind != arch.RelJump32 || r.Value != addrs.Symbols[ThunkITS] {
		t.Fatalf("relocation %+v", r)
	}
	if err := Check(im, addrs.Image, feat); err != nil {
		t.Fatalf("checker: %v", err)
	}
	other := feat
	other.ReturnThunk = ThunkRetbleed
	if err := Check(im, addrs.Image, other); err == nil {
		t.Error("checker accepted a jmp to its_return_thunk for retbleed_return_thunk")
	}
	if err := Check(sls, addrs.Image, feat); err == nil {
		t.Error("checker accepted ret; int3 where a return thunk was due")
	}
	if err := Check(im, addrs.Image, Debian); err == nil {
		t.Error("checker accepted a thunk jmp where ret; int3 was due")
	}
	noReloc := *im
	noReloc.Relocs = nil
	for _, r := range im.Relocs {
		if r.Off != end+1 {
			noReloc.Relocs = append(noReloc.Relocs, r)
		}
	}
	if err := Check(&noReloc, addrs.Image, feat); err == nil {
		t.Error("checker accepted a thunk jmp without its relocation")
	}
	// A thunk the addresses do not hold is an error naming it.
	missing := addrs
	missing.Symbols = map[string]uint64{}
	for k, v := range addrs.Symbols {
		if k != ThunkITS {
			missing.Symbols[k] = v
		}
	}
	if _, err := Generate(p, feat, missing); err == nil || !strings.Contains(err.Error(), ThunkITS) {
		t.Errorf("missing thunk address: %v", err)
	}
}
