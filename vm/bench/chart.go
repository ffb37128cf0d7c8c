package bench

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// archColors are the bar colours of the arches, in report order.
var archColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// series is one arch's bars.
type series struct {
	name   string
	values plotter.Values
}

// barPlot is a grouped bar chart: one group per configuration, one bar per
// series.
func barPlot(title, ylabel string, configs []string, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	w := vg.Points(14)
	top := 0.0
	for _, s := range ss {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	if top > 0 {
		p.Y.Max = top * 1.12 // room above the tallest bar for the legend
	}
	for i, s := range ss {
		b, err := plotter.NewBarChart(s.values, w)
		if err != nil {
			return nil, err
		}
		b.LineStyle.Width = vg.Length(0)
		b.Color = archColors[i%len(archColors)]
		b.Offset = w * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.NominalX(configs...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Add(plotter.NewGrid())
	return p, nil
}

// chartConfigs are the configurations shown: every one but the baseline.
func chartConfigs(r *Report) []string {
	var out []string
	seen := map[string]bool{"none": true}
	add := func(c string) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, l := range r.Live {
		for _, row := range l.Rows {
			add(row.Config)
		}
	}
	if r.Static != nil {
		for _, row := range r.Static.Rows {
			add(row.Config)
		}
	}
	return out
}

// WritePNG draws the report: the live overheads of each arch relative to
// one fentry program (TCG times only compare within one boot), and the
// static instruction counts per invocation.
func WritePNG(path string, r *Report) error {
	configs := chartConfigs(r)
	var plots []*plot.Plot
	if len(r.Live) > 0 {
		var ss []series
		for _, l := range r.Live {
			vals := make(plotter.Values, len(configs))
			for i, c := range configs {
				if row, ok := l.row(c); ok && row.VsFentry.Known() {
					vals[i] = float64(row.VsFentry)
				}
			}
			ss = append(ss, series{name: l.Arch, values: vals})
		}
		labels := liveLabels(r)
		title := "Live overhead per call, relative to one fentry (syscall loop on the getpgid wrapper)\n" + strings.Join(labels, "\n")
		if r.anyTCG() {
			title += "\nTCG: ratios within one boot only; absolute times are meaningless"
		}
		p, err := barPlot(title, "overhead, in units of one fentry's overhead", configs, ss)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	if r.Static != nil {
		var ss []series
		for _, a := range StaticArches {
			vals := make(plotter.Values, len(configs))
			for i, c := range configs {
				for _, row := range r.Static.Rows {
					if row.Config == c && row.Arch == a {
						vals[i] = float64(row.Insns)
					}
				}
			}
			ss = append(ss, series{name: a, values: vals})
		}
		p, err := barPlot(fmt.Sprintf("Static: trampoline instructions per invocation (emulator, %s)", r.Static.Kernel), "instructions", configs, ss)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return fmt.Errorf("nothing to draw")
	}
	const width, rowHeight = 10 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(width, rowHeight*vg.Length(len(plots)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(14)}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// liveLabels name each arch's boot, and the configurations that have no
// bar because the kernel refused them.
func liveLabels(r *Report) []string {
	var labels []string
	for _, l := range r.Live {
		labels = append(labels, fmt.Sprintf("%s: Linux %s, %s, %s", l.Arch, l.Release, strings.ToUpper(orQ(l.Accel)), orQ(l.CPUModel)))
		var refused []string
		for _, row := range l.Rows {
			if row.Errno != "ok" {
				refused = append(refused, row.Config+" ("+row.Errno+")")
			}
		}
		if len(refused) > 0 {
			labels = append(labels, l.Arch+": no bar for "+strings.Join(refused, ", "))
		}
	}
	return labels
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
