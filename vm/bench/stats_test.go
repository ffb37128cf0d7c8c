package bench

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1, 9, 5}, 5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its input: %v", in)
			}
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{100, 110, 90, 105, 95})
	if s.N != 5 || s.Median != 100 || s.Min != 90 || s.Max != 110 || s.MAD != 5 {
		t.Errorf("Summarize = %+v", s)
	}
	if math.Abs(float64(s.Spread)-0.2) > 1e-12 {
		t.Errorf("spread %v, want 0.2", s.Spread)
	}
	e := Summarize(nil)
	if e.N != 0 || e.Median.Known() || e.Spread.Known() {
		t.Errorf("Summarize(nil) = %+v", e)
	}
	if z := Summarize([]float64{0, 0}); z.Spread.Known() {
		t.Errorf("spread of zeros = %v, want unknown", z.Spread)
	}
}

func TestOverheadPaired(t *testing.T) {
	base := []float64{100, 120, 110}
	cfg := []float64{130, 150, 150} // differences 30, 30, 40
	o := OverheadOf(cfg, base)
	if !o.Paired || o.Median != 30 || o.Lo != 30 || o.Hi != 40 {
		t.Errorf("paired overhead = %+v", o)
	}
	// Unequal lengths: the difference of the medians, widest bounds.
	o = OverheadOf([]float64{130, 150}, base)
	if o.Paired || o.Median != 30 || o.Lo != 10 || o.Hi != 50 {
		t.Errorf("unpaired overhead = %+v", o)
	}
	if o := OverheadOf(nil, base); o.Median.Known() {
		t.Errorf("overhead without samples = %+v", o)
	}
}

func TestRatio(t *testing.T) {
	if r := Ratio(3, 2); r != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", r)
	}
	for _, r := range []Num{Ratio(1, 0), Ratio(NaN(), 1), Ratio(1, NaN())} {
		if r.Known() {
			t.Errorf("ratio %v should be unknown", r)
		}
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]Num{1.5, NaN(), Num(math.Inf(1))})
	require.NoError(t, err)
	if string(b) != "[1.5,null,null]" {
		t.Errorf("marshal = %s", b)
	}
	var back []Num
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[0] != 1.5 || back[1].Known() || back[2].Known() {
		t.Errorf("unmarshal = %v", back)
	}
}

func TestOrdering(t *testing.T) {
	for _, tc := range []struct {
		fentry, fexit, modret Num
		holds                 bool
	}{
		{100, 180, 190, true},
		{100, 180, 300, false}, // fmod_ret far above fexit
		{200, 180, 190, false}, // fentry not the cheapest
		{100, NaN(), 190, false},
	} {
		got := Ordering(tc.fentry, tc.fexit, tc.modret)
		if holds := len(got) >= 5 && got[:5] == "holds"; holds != tc.holds {
			t.Errorf("Ordering(%v, %v, %v) = %q, want holds=%v", tc.fentry, tc.fexit, tc.modret, got, tc.holds)
		}
	}
}
