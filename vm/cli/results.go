package cli

import (
	"flag"
	"io"
	"time"

	"github.com/bpftramp/tramp/vm/qemu"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/report"
)

// ciFlags are the flags every boot command has for CI: the shard it
// runs and the result files it writes.
type ciFlags struct {
	shard, json, junit, markdown *string
}

func addCIFlags(fs *flag.FlagSet) *ciFlags {
	return &ciFlags{
		shard:    fs.String("shard", "", "run only shard i of n (i/n, e.g. 2/4): a deterministic split over build × arch × case, one boot per build × arch where it can; tramp report merge joins the shards' --json files"),
		json:     fs.String("json", "", "also write every case result, the timings, build, arch, accel, CPU and kernel splats as JSON to this file (- for stdout; tramp report merge reads it)"),
		junit:    fs.String("junit", "", "also write JUnit XML to this file: a testcase per case × build × arch, failures carrying the diff"),
		markdown: fs.String("markdown", "", "also write a Markdown summary to this file (for a CI step summary)"),
	}
}

// parseShard is --shard: the whole run when not given.
func (c *ciFlags) parseShard() (report.Shard, error) {
	if *c.shard == "" {
		return report.Shard{Index: 1, Count: 1}, nil
	}
	return report.ParseShard(*c.shard)
}

// write writes res to each file asked for.
func (c *ciFlags) write(res *report.Results, stdout io.Writer) error {
	return res.WriteFiles(stdout, *c.json, *c.junit, *c.markdown)
}

// newResults is the empty results of command on shard s.
func newResults(command string, s report.Shard) *report.Results {
	r := &report.Results{Schema: report.SchemaVersion, Command: command, Runs: []report.Run{}}
	if !s.Whole() {
		r.Shard = s.String()
	}
	return r
}

// consoleTailLines is how many console lines a VM error shows.
const consoleTailLines = 15

// bootRun is a report.Run's boot part: what record.Result and the error
// say of build on arch.
func bootRun(build, arch string, index int, res *record.Result, err error) report.Run {
	run := report.Run{Build: build, Arch: arch, Index: index, Cases: []report.Case{}}
	if res != nil {
		run.Accel, run.CPU = res.Accel, res.CPU
		if res.Hello != nil {
			run.CPUModel, run.Release = res.Hello.CPUModel, res.Hello.Release
		}
		run.HelloMS, run.ElapsedMS = res.HelloAfter.Milliseconds(), res.Elapsed.Milliseconds()
		run.Splats = splats(res.Splats)
	}
	if err != nil {
		run.Error = err.Error()
		if res != nil && len(res.Console) > 0 {
			run.ConsoleTail = append([]string(nil), res.Console[max(0, len(res.Console)-consoleTailLines):]...)
		}
	}
	return run
}

func splats(ss []qemu.Splat) []report.Splat {
	var out []report.Splat
	for _, s := range ss {
		out = append(out, report.Splat{Kind: s.Kind, Line: s.Line, Excerpt: s.Excerpt})
	}
	return out
}

// arrival is when a case's recording came to the host.
type arrival struct {
	name string
	at   time.Time
}

// caseTimes are the cases' run times in the guest, as the host saw them:
// from the guest's hello (or, without one, from started) to the first
// recording, and from each recording to the next.
func caseTimes(arrivals []arrival, res *record.Result, started time.Time) map[string]time.Duration {
	prev := started
	if res != nil && !res.Start.IsZero() && res.HelloAfter > 0 {
		prev = res.Start.Add(res.HelloAfter)
	}
	out := map[string]time.Duration{}
	for _, a := range arrivals {
		out[a.name] = max(0, a.at.Sub(prev))
		prev = a.at
	}
	return out
}

// status is a verdict as CI counts it.
func status(v record.Verdict) string {
	switch v {
	case record.Agree:
		return report.Pass
	case record.NotInBTF:
		return report.Skip
	}
	return report.Fail
}
