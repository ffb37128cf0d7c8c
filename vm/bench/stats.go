package bench

import (
	"math"
	"slices"
	"strconv"
)

// Num is a figure that may be unknown (NaN): JSON writes an unknown as
// null and reads null back as NaN.
type Num float64

// NaN is the unknown Num.
func NaN() Num { return Num(math.NaN()) }

// Known says whether n is a number (not NaN or infinite).
func (n Num) Known() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// MarshalJSON writes n, or null when it is not known.
func (n Num) MarshalJSON() ([]byte, error) {
	if !n.Known() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = NaN()
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// Summary describes the repetitions of one measurement.
type Summary struct {
	N      int `json:"n"`
	Median Num `json:"median"`
	Min    Num `json:"min"`
	Max    Num `json:"max"`
	// MAD is the median absolute deviation from the median.
	MAD Num `json:"mad"`
	// Spread is (Max-Min)/Median: the relative width of the repetitions.
	Spread Num `json:"spread"`
}

// Median of xs (NaN for none); xs is not changed.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Summarize computes the Summary of xs (unknowns everywhere for none).
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{Median: NaN(), Min: NaN(), Max: NaN(), MAD: NaN(), Spread: NaN()}
	}
	med := Median(xs)
	s := Summary{N: len(xs), Median: Num(med), Min: Num(slices.Min(xs)), Max: Num(slices.Max(xs))}
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - med)
	}
	s.MAD = Num(Median(dev))
	s.Spread = Ratio(s.Max-s.Min, s.Median)
	return s
}

// Overhead is a configuration's cost per call above the baseline.
type Overhead struct {
	Median Num `json:"median"`
	Lo     Num `json:"lo"`
	Hi     Num `json:"hi"`
	// Paired: Median, Lo and Hi are the median, minimum and maximum of
	// the per-round differences cfg[i]-base[i] (the repetitions were
	// measured in interleaved rounds); otherwise Median is the difference
	// of the medians and Lo, Hi the widest bounds cfg.Min-base.Max and
	// cfg.Max-base.Min.
	Paired bool `json:"paired"`
}

// OverheadOf is cfg's overhead over base, paired by round when both have
// the same number of samples.
func OverheadOf(cfg, base []float64) Overhead {
	if len(cfg) == 0 || len(base) == 0 {
		return Overhead{Median: NaN(), Lo: NaN(), Hi: NaN()}
	}
	if len(cfg) == len(base) {
		d := make([]float64, len(cfg))
		for i := range cfg {
			d[i] = cfg[i] - base[i]
		}
		return Overhead{Median: Num(Median(d)), Lo: Num(slices.Min(d)), Hi: Num(slices.Max(d)), Paired: true}
	}
	c, b := Summarize(cfg), Summarize(base)
	return Overhead{Median: c.Median - b.Median, Lo: c.Min - b.Max, Hi: c.Max - b.Min}
}

// Ratio is a/b, unknown when b is 0 or either is unknown.
func Ratio(a, b Num) Num {
	if b == 0 || !a.Known() || !b.Known() {
		return NaN()
	}
	return a / b
}
