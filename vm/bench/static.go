package bench

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/emu"
	"github.com/bpftramp/tramp/trampoline"
)

// StaticProfile is the kernel profile the static costs are computed for.
const StaticProfile = "debian-7.2.13"

// StaticArches are the architectures the emulator runs.
var StaticArches = []string{"x86_64", "arm64"}

// StaticCosts is what the generated trampoline of every bench
// configuration executes per invocation of the traced function, in the
// emulator: deterministic and independent of the machine.
type StaticCosts struct {
	Kernel string `json:"kernel"`
	// Proto is the traced function's prototype (the syscall wrapper the
	// live bench traces: one pointer argument, a long result).
	Proto string `json:"proto"`
	// Note says what is counted.
	Note string      `json:"note"`
	Rows []StaticRow `json:"rows"`
}

// StaticRow is one (configuration, arch).
type StaticRow struct {
	Config string `json:"config"`
	Arch   string `json:"arch"`
	Progs  int    `json:"progs"`
	// CodeBytes is the image's code size (0: no trampoline).
	CodeBytes int `json:"code_bytes"`
	emu.Costs
	// ProgRuns is how often the programs ran in the run (fsession counts
	// twice: entry and exit).
	ProgRuns int `json:"prog_runs"`
}

// staticNote describes the counts.
const staticNote = "per invocation of the traced function, inside the trampoline image only (helpers, programs and the traced function's body are not counted); loads/stores are instructions that read/write memory, calls are the helpers and programs the image calls"

// benchProto is the prototype of the syscall wrappers the live bench
// traces: long __x64_sys_getpgid(const struct pt_regs *).
const benchProto = "(ptr) -> s64"

// CaseText is the case that attaches a configuration's programs on arch's
// bench target and runs it once. fmodret marks the wrapper as a target
// fmod_ret may attach to (Debian 7.x accepts it on syscall wrappers).
func CaseText(c guestapi.BenchConfig, arch string) (string, error) {
	target, err := guestapi.BenchTarget(arch)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# tramp bench configuration %s: %s\n", c.Name, c.Note)
	fmt.Fprintf(&b, "kernel %s\narch %s\ntarget %s%s fmodret\n", StaticProfile, arch, target, benchProto)
	for _, p := range c.Progs {
		mp, err := p.Model()
		if err != nil {
			return "", err
		}
		b.WriteString(cases.FormatProg(mp) + "\n")
	}
	for _, p := range c.Progs {
		fmt.Fprintf(&b, "attach %s expect ok\n", p.Name)
	}
	b.WriteString("run\n")
	return b.String(), nil
}

// Static computes the static costs of every bench configuration on every
// StaticArches arch. A run that fails a check of the emulator is an error.
func Static() (*StaticCosts, error) {
	prof, err := trampoline.LookupProfile(StaticProfile)
	if err != nil {
		return nil, err
	}
	out := &StaticCosts{Kernel: StaticProfile, Proto: benchProto, Note: staticNote}
	for _, c := range guestapi.BenchConfigs {
		for _, an := range StaticArches {
			if a, err := trampoline.LookupArch(an); err == nil && !a.TracingMulti && configMulti(c) {
				continue // the arch cannot attach it; the image is the single kind's
			}
			row, err := staticRow(c, an, prof)
			if err != nil {
				return nil, fmt.Errorf("static costs of %s on %s: %w", c.Name, an, err)
			}
			out.Rows = append(out.Rows, row)
		}
	}
	return out, nil
}

// configMulti says whether a configuration attaches through multi links.
func configMulti(c guestapi.BenchConfig) bool {
	for _, p := range c.Progs {
		if strings.HasSuffix(p.Kind, ".multi") {
			return true
		}
	}
	return false
}

func staticRow(c guestapi.BenchConfig, archName string, prof *trampoline.Profile) (StaticRow, error) {
	row := StaticRow{Config: c.Name, Arch: archName, Progs: len(c.Progs)}
	a, err := trampoline.LookupArch(archName)
	if err != nil {
		return row, err
	}
	text, err := CaseText(c, archName)
	if err != nil {
		return row, err
	}
	cs, err := cases.Parse("bench-"+c.Name+".tramp", []byte(text))
	if err != nil {
		return row, err
	}
	runs, err := emu.RunSteps(cs, prof, a)
	if err != nil {
		return row, err
	}
	if len(runs) != 1 {
		return row, fmt.Errorf("want one run step, got %d", len(runs))
	}
	cr := runs[0]
	if cr.Plan == nil {
		if len(c.Progs) > 0 {
			return row, fmt.Errorf("the model attached none of the %d programs", len(c.Progs))
		}
		return row, nil // no trampoline: nothing runs
	}
	g, err := emu.Generate(cr.Plan, nil, cs.Progs)
	if err != nil {
		return row, err
	}
	e, err := emu.New(g.Setup)
	if err != nil {
		return row, err
	}
	res, costs := e.RunCosts(cr.Run)
	emu.Verify(res, cr.Plan, &g.Setup, &cr.Run)
	if err := res.Err(); err != nil {
		return row, err
	}
	if !res.Completed {
		return row, fmt.Errorf("the run did not return to the caller")
	}
	row.CodeBytes, row.Costs, row.ProgRuns = len(g.Image.Code), costs, len(res.Calls)
	return row, nil
}
