package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// AnchorNote puts the figures next to published x86 ones, as a note only:
// those are real hardware and the kernel bench's BPF-driven trigger.
const AnchorNote = "published x86 anchors (bpf-next cover letter, Nov 2025; real hardware, the kernel bench's BPF-driven trigger, not comparable in absolute terms): fentry ≈170 M calls/s; fexit 80.5 → 136.5 M/s and fmod_ret 78 → 159 M/s with 6.19's jmp mode"

// num formats a figure with the given precision, "-" when unknown.
func num(n Num, prec int) string {
	if !n.Known() {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, float64(n))
}

// pct formats a fraction as a signed percentage.
func pct(n Num) string {
	if !n.Known() {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", 100*float64(n))
}

// Label says how an arch's figures were obtained.
func (ar *ArchReport) Label() string {
	accel := ar.Accel
	if accel == "" {
		accel = "?"
	}
	cpu := ar.CPUModel
	if cpu == "" {
		cpu = "?"
	}
	return fmt.Sprintf("%s %s, Linux %s, accel %s, CPU %q", ar.Kernel, ar.Arch, ar.Release, strings.ToUpper(accel), cpu)
}

// anyTCG says whether some live figure was measured under TCG (or with an
// unknown accelerator).
func (r *Report) anyTCG() bool {
	for _, l := range r.Live {
		if !strings.EqualFold(l.Accel, "kvm") {
			return true
		}
	}
	return false
}

// WriteText prints the report as tables.
func WriteText(w io.Writer, r *Report) {
	if len(r.Live) > 0 {
		fmt.Fprintf(w, "live: %s\n", r.Method)
	}
	for i := range r.Live {
		writeLive(w, &r.Live[i])
	}
	if len(r.Live) > 0 {
		if r.anyTCG() {
			fmt.Fprintf(w, "note: %s.\n", TCGNote)
		}
		fmt.Fprintf(w, "note: %s.\n", AnchorNote)
	}
	if r.Static != nil {
		if len(r.Live) > 0 {
			fmt.Fprintln(w)
		}
		writeStatic(w, r.Static)
	}
	if r.Command != "" {
		fmt.Fprintf(w, "\n(produced by: %s)\n", r.Command)
	}
}

func writeLive(w io.Writer, ar *ArchReport) {
	fmt.Fprintf(w, "\n%s\n", ar.Label())
	fmt.Fprintf(w, "target %s, %d repetitions of %d calls per configuration; ns per call (median, min, max, spread = (max-min)/median); overhead = median of the per-round differences from the baseline [min, max]\n", ar.Target, ar.Reps, ar.Iters)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-16s\tprogs\tns/call\tmin\tmax\tspread\toverhead\t[lo\thi]\tx fentry\truns/call\t\n", "config")
	for _, row := range ar.Rows {
		if row.Errno != "ok" {
			fmt.Fprintf(tw, "%-16s\t%d\t%s at %s\t\t\t\t\t\t\t\t\t\n", row.Config, row.Progs, row.Errno, row.Stage)
			continue
		}
		s, o := row.NsPerCall, row.Overhead
		runs := "-"
		if row.RunsPerCall >= 0 {
			runs = fmt.Sprintf("%.2f", row.RunsPerCall)
		}
		fmt.Fprintf(tw, "%-16s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Config, row.Progs, num(s.Median, 1), num(s.Min, 1), num(s.Max, 1),
			pct(s.Spread)[1:], num(o.Median, 1), num(o.Lo, 1), num(o.Hi, 1), num(row.VsFentry, 2), runs)
	}
	tw.Flush()
	var rs []string
	for _, r := range ar.Ratios {
		rs = append(rs, fmt.Sprintf("%s %s", r.Name, num(r.Value, 2)))
	}
	if len(rs) > 0 {
		fmt.Fprintf(w, "overhead ratios: %s\n", strings.Join(rs, "; "))
	}
	if fs, ok := ar.row("fsession"); ok {
		if fx, ok := ar.row("fentry+fexit"); ok {
			fmt.Fprintf(w, "fsession vs fentry+fexit: overhead %s vs %s ns/call, ratio %s\n", num(fs.Overhead.Median, 1), num(fx.Overhead.Median, 1), num(Ratio(fs.Overhead.Median, fx.Overhead.Median), 2))
		}
	}
	fmt.Fprintf(w, "ordering fentry < fexit ≈ fmod_ret: %s\n", ar.Ordering)
	if len(ar.Attach) > 0 {
		fmt.Fprintf(w, "attach cost: N functions with one fentry.multi link vs N fentry programs with a link each; ms per repetition (median [min, max]): load + link, then close\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "N\tmulti attach\tsingle attach\tsingle/multi\tmulti detach\tsingle detach\tsingle/multi\t\n")
		ms := func(s Summary) string {
			if s.N == 0 {
				return "-"
			}
			return fmt.Sprintf("%s [%s, %s]", num(s.Median, 2), num(s.Min, 2), num(s.Max, 2))
		}
		for _, r := range ar.Attach {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.N, ms(r.MultiAttach), ms(r.SingleAttach), num(r.AttachRatio, 1),
				ms(r.MultiDetach), ms(r.SingleDetach), num(r.DetachRatio, 1))
		}
		tw.Flush()
		for _, r := range ar.Attach {
			if r.Errno != "ok" {
				fmt.Fprintf(w, "attach cost, %d functions: %s\n", r.N, r.Errno)
			}
		}
	}
	if ar.Error != "" {
		fmt.Fprintf(w, "ERROR: %s\n", ar.Error)
	}
}

// row finds a measured configuration.
func (ar *ArchReport) row(cfg string) (Row, bool) {
	for _, r := range ar.Rows {
		if r.Config == cfg && r.Errno == "ok" && r.NsPerCall.N > 0 {
			return r, true
		}
	}
	return Row{}, false
}

func writeStatic(w io.Writer, s *StaticCosts) {
	fmt.Fprintf(w, "static costs: emulator, %s, traced function %s; %s\n", s.Kernel, s.Proto, s.Note)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-16s\t%-7s\tprogs\tbytes\tinsns\tloads\tstores\tcalls\tbranches\tprog runs\t\n", "config", "arch")
	for _, r := range s.Rows {
		fmt.Fprintf(tw, "%-16s\t%-7s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Config, r.Arch, r.Progs, r.CodeBytes, r.Insns, r.Loads, r.Stores, r.Calls, r.Branches, r.ProgRuns)
	}
	tw.Flush()
}
