package bench

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"strings"
)

// TCGNote says how far figures measured under TCG can be trusted.
const TCGNote = "TCG emulates the guest CPU in software: absolute times say nothing about real hardware, and are only comparable as ratios within one run (one boot)"

// Report is the outcome of tramp bench: the live measurements per arch
// and the static costs.
type Report struct {
	// Command is the command line that produced the report.
	Command string `json:"command,omitempty"`
	Method  string `json:"method"`
	Note    string `json:"note"`
	// Live has one entry per booted arch (none with --static).
	Live   []ArchReport `json:"live,omitempty"`
	Static *StaticCosts `json:"static,omitempty"`
}

// ArchReport is the live figures of one arch.
type ArchReport struct {
	Arch    string `json:"arch"`
	Kernel  string `json:"kernel"`
	Release string `json:"release"`
	// Accel (tcg or kvm) and CPUModel (from the guest's hello record) say
	// how the figures were obtained.
	Accel    string `json:"accel"`
	CPUModel string `json:"cpu_model"`
	Target   string `json:"target"`
	Iters    int    `json:"iters"`
	Reps     int    `json:"reps"`
	// Rows are the configurations in report order, the baseline ("none")
	// first.
	Rows   []Row      `json:"rows"`
	Ratios []RatioRow `json:"ratios"`
	// Ordering says whether fentry < fexit ≈ fmod_ret holds in the
	// overheads (≈: within 25%).
	Ordering string `json:"ordering"`
	// Error is why the boot or the job failed (the rows then hold what
	// arrived before).
	Error string `json:"error,omitempty"`
	// BootSeconds is QEMU start to exit.
	BootSeconds float64 `json:"boot_s"`
	// Attach is the attach-cost table: per function count, one multi
	// link against as many single links.
	Attach []AttachRow `json:"attach,omitempty"`
}

// AttachRow compares attaching and detaching N functions with one
// fentry.multi link and with N fentry links (milliseconds per
// repetition, medians), and gives single over multi.
type AttachRow struct {
	N int `json:"n"`
	// Errno is "ok" or why a way was refused ("multi: EOPNOTSUPP at
	// attach").
	Errno        string  `json:"errno"`
	MultiAttach  Summary `json:"multi_attach_ms"`
	SingleAttach Summary `json:"single_attach_ms"`
	MultiDetach  Summary `json:"multi_detach_ms"`
	SingleDetach Summary `json:"single_detach_ms"`
	AttachRatio  Num     `json:"attach_single_over_multi"`
	DetachRatio  Num     `json:"detach_single_over_multi"`
}

// attachRows pairs the multi and single points of each N.
func attachRows(points []guestapi.BenchAttach) []AttachRow {
	ms := func(ns []float64) Summary {
		out := make([]float64, len(ns))
		for i, v := range ns {
			out[i] = v / 1e6
		}
		return Summarize(out)
	}
	var rows []AttachRow
	at := map[int]int{} // N → index in rows
	for _, p := range points {
		i, ok := at[p.N]
		if !ok {
			i = len(rows)
			at[p.N] = i
			rows = append(rows, AttachRow{N: p.N, Errno: "ok"})
		}
		r := &rows[i]
		if p.Errno != "ok" {
			msg := fmt.Sprintf("%s: %s at %s", p.Way, p.Errno, p.Stage)
			if r.Errno == "ok" {
				r.Errno = msg
			} else {
				r.Errno += "; " + msg
			}
		}
		switch p.Way {
		case guestapi.AttachMulti:
			r.MultiAttach, r.MultiDetach = ms(p.AttachNs), ms(p.DetachNs)
		case guestapi.AttachSingle:
			r.SingleAttach, r.SingleDetach = ms(p.AttachNs), ms(p.DetachNs)
		}
	}
	for i := range rows {
		r := &rows[i]
		r.AttachRatio = Ratio(r.SingleAttach.Median, r.MultiAttach.Median)
		r.DetachRatio = Ratio(r.SingleDetach.Median, r.MultiDetach.Median)
	}
	return rows
}

// Row is one configuration's live figures (nanoseconds per call).
type Row struct {
	Config    string    `json:"config"`
	Progs     int       `json:"progs"`
	Errno     string    `json:"errno"`
	Stage     string    `json:"stage,omitempty"`
	NsPerCall Summary   `json:"ns_per_call"`
	Samples   []float64 `json:"samples"`
	Overhead  Overhead  `json:"overhead"`
	// VsFentry is the overhead over one fentry program's overhead.
	VsFentry Num `json:"vs_fentry"`
	// RunsPerCall is how often the programs ran per call (from the
	// kernel's run counters; -1: not known).
	RunsPerCall float64 `json:"runs_per_call"`
}

// RatioRow is a named ratio of two configurations' overheads.
type RatioRow struct {
	Name  string `json:"name"`
	A     string `json:"a"`
	B     string `json:"b"`
	Value Num    `json:"value"`
}

// RatioPairs are the ratios every report gives: overhead(A)/overhead(B).
var RatioPairs = [][2]string{
	{"fsession", "fentry+fexit"},
	{"fsession-cookie", "fsession"},
	{"fexit", "fentry"},
	{"fmod_ret", "fentry"},
	{"fmod_ret", "fexit"},
	{"fentry+fexit", "fentry"},
	{"fentry-x2", "fentry"},
	{"fentry-x4", "fentry"},
	{"fentry-x8", "fentry"},
}

// Summarise turns a boot's results into an ArchReport.
func Summarise(r *ArchRun) ArchReport {
	ar := ArchReport{Arch: string(r.Arch), Kernel: r.Kernel, Accel: r.Accel, BootSeconds: r.Elapsed.Seconds()}
	if r.Hello != nil {
		ar.Release, ar.CPUModel = r.Hello.Release, r.Hello.CPUModel
	}
	if r.Start != nil {
		ar.Target, ar.Iters, ar.Reps = r.Start.Target, r.Start.Iters, r.Start.Reps
		if ar.Release == "" {
			ar.Release = r.Start.Release
		}
	}
	if r.Err != nil {
		ar.Error = r.Err.Error()
	}
	ar.Attach = attachRows(r.Attach)
	var base []float64
	for _, res := range r.Results {
		samples := res.NsPerCall
		if samples == nil {
			samples = []float64{}
		}
		if res.Config == "none" && base == nil {
			base = samples
		}
		ar.Rows = append(ar.Rows, Row{Config: res.Config, Progs: len(res.Progs), Errno: res.Errno, Stage: res.Stage,
			NsPerCall: Summarize(samples), Samples: samples, RunsPerCall: res.RunsPerCall})
	}
	for i := range ar.Rows {
		ar.Rows[i].Overhead = OverheadOf(ar.Rows[i].Samples, base)
	}
	fentry := ar.overhead("fentry")
	for i := range ar.Rows {
		ar.Rows[i].VsFentry = Ratio(ar.Rows[i].Overhead.Median, fentry)
	}
	for _, p := range RatioPairs {
		ar.Ratios = append(ar.Ratios, RatioRow{Name: p[0] + " / " + p[1], A: p[0], B: p[1], Value: Ratio(ar.overhead(p[0]), ar.overhead(p[1]))})
	}
	ar.Ordering = Ordering(ar.overhead("fentry"), ar.overhead("fexit"), ar.overhead("fmod_ret"))
	return ar
}

// overhead is the median overhead of a configuration (unknown: not
// measured).
func (ar *ArchReport) overhead(cfg string) Num {
	for _, r := range ar.Rows {
		if r.Config == cfg && r.Errno == "ok" && r.NsPerCall.N > 0 {
			return r.Overhead.Median
		}
	}
	return NaN()
}

// Ordering checks fentry < fexit ≈ fmod_ret on three overheads (≈: the
// larger at most 25% above the smaller) and says what holds.
func Ordering(fentry, fexit, modret Num) string {
	if !fentry.Known() || !fexit.Known() || !modret.Known() {
		return "not measured (a configuration is missing)"
	}
	var parts []string
	holds := true
	if fentry < fexit && fentry < modret {
		parts = append(parts, "fentry < fexit, fmod_ret")
	} else {
		holds = false
		parts = append(parts, "fentry is not the cheapest")
	}
	if lo, hi := min(fexit, modret), max(fexit, modret); lo > 0 && hi <= 1.25*lo {
		parts = append(parts, fmt.Sprintf("fexit ≈ fmod_ret (%.2f)", Ratio(modret, fexit)))
	} else {
		holds = false
		parts = append(parts, fmt.Sprintf("fexit and fmod_ret differ by more than 25%% (fmod_ret/fexit %.2f)", Ratio(modret, fexit)))
	}
	verdict := "holds"
	if !holds {
		verdict = "does not hold"
	}
	return verdict + ": " + strings.Join(parts, "; ")
}

// NewReport builds the report of a live run (and static costs, if any).
func NewReport(runs []*ArchRun, static *StaticCosts) *Report {
	rep := &Report{Method: guestapi.BenchMethod, Note: TCGNote, Static: static}
	for _, r := range runs {
		rep.Live = append(rep.Live, Summarise(r))
		if r.Start != nil && r.Start.Method != "" {
			rep.Method = r.Start.Method // the guest's own word for what it ran
		}
	}
	if static != nil && len(runs) == 0 {
		rep.Method, rep.Note = "", ""
	}
	return rep
}
