package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SchemaVersion is the version of the results JSON this package writes
// and the only one it reads. A change that an older reader would
// misread bumps it.
const SchemaVersion = 1

// Statuses of a case: what CI counts.
const (
	Pass = "pass" // the kernel and the model agree
	Fail = "fail" // they disagree, the case did not finish, or it has no result
	Skip = "skip" // the case does not apply to the booted kernel (the model alone covers it)
)

// Results is one run of a tramp vm command (or one shard of it), or the
// merge of several.
type Results struct {
	// Schema is SchemaVersion.
	Schema int `json:"schema"`
	// Command is the tramp vm command: check, record, shapes or fuzz.
	Command string `json:"command"`
	// Shard is the run's "i/n" ("" for a whole run and for a merge).
	Shard string `json:"shard,omitempty"`
	// Runs are the boots, one per build × arch (or per part of one
	// when a build × arch is split over shards).
	Runs []Run `json:"runs"`
}

// Run is one boot: one build on one arch and the cases it ran.
type Run struct {
	Build string `json:"build"`
	Arch  string `json:"arch"`
	// Index is the position of this build × arch in the whole
	// (unsharded) run: a merge puts the runs back in this order.
	Index int `json:"index"`
	// Accel is the accelerator ("kvm" or "tcg") and CPU the QEMU -cpu
	// value the boot used; CPUModel is the CPU the guest saw and
	// Release the kernel's release, as the guest reported them.
	Accel    string `json:"accel,omitempty"`
	CPU      string `json:"cpu,omitempty"`
	CPUModel string `json:"cpu_model,omitempty"`
	Release  string `json:"release,omitempty"`
	// HelloMS is QEMU's start to the guest's hello, ElapsedMS its start
	// to its exit (0: QEMU never ran).
	HelloMS   int64 `json:"boot_to_hello_ms,omitempty"`
	ElapsedMS int64 `json:"whole_run_ms,omitempty"`
	// Error is the VM error ("" for a clean boot), ConsoleTail the last
	// console lines when there was one.
	Error       string   `json:"vm_error,omitempty"`
	ConsoleTail []string `json:"console_tail,omitempty"`
	// Splats are the kernel's oopses, warnings and panics seen on the
	// console.
	Splats []Splat `json:"splats,omitempty"`
	Cases  []Case  `json:"cases"`
}

// Splat is one kernel splat on a boot's console.
type Splat struct {
	Kind    string   `json:"kind"` // panic, oops, bug, warning, call-trace, stall, hung-task
	Line    int      `json:"line"` // its first console line (0-based)
	Excerpt []string `json:"excerpt,omitempty"`
}

// Case is one case's outcome on one build and arch.
type Case struct {
	Case string `json:"case"`
	// Index is the case's position in its build × arch's whole list.
	Index int `json:"index"`
	// Status is Pass, Fail or Skip; Result the comparison's verdict as
	// the table shows it (ok, MISMATCH, not in kernel, incomplete, no
	// result).
	Status string `json:"status"`
	Result string `json:"result"`
	Steps  int    `json:"steps"`
	Runs   int    `json:"runs"`
	Calls  int    `json:"calls"`
	Images int    `json:"images"`
	// TimeMS is how long the case ran in the guest, as the host saw
	// its recording arrive.
	TimeMS int64 `json:"time_ms"`
	// Problems are the differences between kernel and model (the diff).
	Problems []string `json:"problems,omitempty"`
}

// Totals counts a result's cases.
type Totals struct {
	Passed, Failed, Skipped int
	// VMErrors counts the boots with a VM error.
	VMErrors int
}

// Totals counts r's cases and VM errors.
func (r *Results) Totals() Totals {
	var t Totals
	for _, run := range r.Runs {
		if run.Error != "" {
			t.VMErrors++
		}
		for _, c := range run.Cases {
			switch c.Status {
			case Pass:
				t.Passed++
			case Skip:
				t.Skipped++
			default:
				t.Failed++
			}
		}
	}
	return t
}

// OK says that no case failed and every boot was clean: the exit status
// of the run.
func (r *Results) OK() bool {
	t := r.Totals()
	return t.Failed == 0 && t.VMErrors == 0
}

// Marshal is r as the results JSON, indented, with a final newline.
func (r *Results) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse reads a results JSON and checks it: the schema version, and that
// every run names its build and arch and every case its name and a known
// status. An error names what is wrong and where (line and column, or
// runs[i].cases[j]).
func Parse(data []byte) (*Results, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty: no results JSON")
	}
	if trimmed[0] == '[' {
		return nil, errors.New("a JSON array, not a results object: written by a tramp from before the results schema (rerun with this one)")
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jsonError(data, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("results schema %d, this tramp reads schema %d only", r.Schema, SchemaVersion)
	}
	if r.Command == "" {
		return nil, errors.New("no command")
	}
	if r.Shard != "" {
		if _, err := ParseShard(r.Shard); err != nil {
			return nil, fmt.Errorf("shard: %w", err)
		}
	}
	for i, run := range r.Runs {
		where := fmt.Sprintf("runs[%d]", i)
		if run.Build == "" || run.Arch == "" {
			return nil, fmt.Errorf("%s: no build or no arch", where)
		}
		if run.Index < 0 {
			return nil, fmt.Errorf("%s (%s %s): negative index %d", where, run.Build, run.Arch, run.Index)
		}
		for j, c := range run.Cases {
			where := fmt.Sprintf("runs[%d].cases[%d] (%s %s)", i, j, run.Build, run.Arch)
			if c.Case == "" {
				return nil, fmt.Errorf("%s: no case name", where)
			}
			if c.Index < 0 {
				return nil, fmt.Errorf("%s %s: negative index %d", where, c.Case, c.Index)
			}
			switch c.Status {
			case Pass, Fail, Skip:
			default:
				return nil, fmt.Errorf("%s %s: status %q (want %s, %s or %s)", where, c.Case, c.Status, Pass, Fail, Skip)
			}
		}
	}
	return &r, nil
}

// jsonError says where in data a decoding error is.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Errorf("line %d, column %d: %s", line, col, strings.TrimPrefix(err.Error(), "json: "))
}
