package guestapi

import "fmt"

// A shapes job records trampolines for real kernel functions chosen by
// their BTF prototype rather than for the fixed test functions. It walks
// the vmlinux BTF, keeps the functions ftrace can patch that are not on a
// deny list, sorts their prototypes into shape buckets (the guest's
// ClassifyShape; Shape.Bucket names one), picks
// a few functions per bucket (seeded, deterministic), and for each chosen
// function and each program mix attaches trivial programs, captures the
// image and detaches them again. Nothing triggers the functions: only the
// attach outcomes and the images are recorded.
//
// Records, in order: one KindShapeScan (what the scan found and chose),
// then per (function, mix) the records of a batch case: KindCase, a
// KindShape describing the function and mix, KindStart, one KindStep per
// attach and detach, a KindCapture after the last attach when a link is
// in place, and KindJobDone. The host turns each case into a normal
// recording with an equivalent case text.

// ShapeJob is the params of a "shapes" guest job.
type ShapeJob struct {
	// PerBucket is how many functions to pick per bucket (0: 1).
	PerBucket int `json:"per_bucket"`
	// Seed seeds the per-bucket choice.
	Seed uint64 `json:"seed"`
	// Mixes are the program mixes to run on every function (empty:
	// DefaultShapeMixes); see ShapeMixes.
	Mixes []string `json:"mixes,omitempty"`
	// Funcs, when set, replaces the scan's choice with these functions
	// (they still have to pass the filters).
	Funcs []string `json:"funcs,omitempty"`
	// Limit caps the number of functions (0: no cap).
	Limit int `json:"limit,omitempty"`
	// Multi, when positive, adds one multi-link shape after the others:
	// an fsession.multi program with a session cookie and
	// bpf_get_func_ip on Multi functions at once (MultiShapeMix), the
	// chosen ones first, then further candidates; each was linked alone
	// first by a single fsession program, so that every function of the
	// link is one the kernel accepts.
	Multi int `json:"multi,omitempty"`
}

// MultiShapeMix is the mix name of the multi-link shape.
const MultiShapeMix = "fsession-cookie-ip.multi"

// MultiShapeProgs is the program of the multi-link shape.
var MultiShapeProgs = []Prog{{Name: "m", Kind: "fsession.multi", Cookie: true, IP: true}}

// MultiShapeName is the case name of the multi-link shape over n
// functions.
func MultiShapeName(n int) string { return fmt.Sprintf("shape-multi%d-%s", n, MultiShapeMix) }

// ShapeFunc is one function of a multi-link shape.
type ShapeFunc struct {
	Func        string `json:"func"`
	BTFID       uint32 `json:"btf_id"`
	Proto       string `json:"proto"`
	ErrorInject bool   `json:"error_inject,omitempty"`
}

// Record kinds of a shapes job.
const (
	KindShapeScan = "shape_scan" // ShapeScan, once, before the cases
	KindShape     = "shape"      // Shape, after each case's KindCase record
)

// ShapeScan says where the traceable functions came from and what the
// scan kept, refused and chose.
type ShapeScan struct {
	Arch string `json:"arch"`
	// FuncSource is "available_filter_functions", or "kallsyms" when the
	// tracefs file could not be read (FuncSourceNote says why).
	FuncSource     string `json:"func_source"`
	FuncSourceNote string `json:"func_source_note,omitempty"`
	// ErrorInject: functions in debugfs error_injection/list (-1: the
	// list was unreadable, ErrorInjectNote says why).
	ErrorInject     int    `json:"error_inject"`
	ErrorInjectNote string `json:"error_inject_note,omitempty"`
	// Counts of BTF functions: all, traceable (in the source, once),
	// denied, ambiguous (name twice in BTF or in the source), refused by
	// PrototypeFromBTF, out of range (over 12 args, or an argument over 16
	// bytes), and the candidates left.
	BTFFuncs   int `json:"btf_funcs"`
	Traceable  int `json:"traceable"`
	Denied     int `json:"denied"`
	Ambiguous  int `json:"ambiguous"`
	Refused    int `json:"refused"`
	OutOfRange int `json:"out_of_range"`
	Candidates int `json:"candidates"`
	// Buckets: candidates per bucket.
	Buckets map[string]int `json:"buckets"`
	// Chosen: the functions picked, in run order.
	Chosen []string `json:"chosen"`
	Mixes  []string `json:"mixes"`
	// Time spent reading the traceable functions, walking the BTF, and
	// in all (with the kallsyms pass for the chosen functions).
	ReadMillis int64 `json:"read_ms"`
	BTFMillis  int64 `json:"btf_ms"`
	Millis     int64 `json:"ms"`
}

// Shape describes one (function, mix) case of a shapes job.
type Shape struct {
	Index int    `json:"index"`
	Name  string `json:"name"` // shape-<func>-<mix>
	Func  string `json:"func"`
	BTFID uint32 `json:"btf_id"`
	// Proto is the prototype in case syntax, e.g. "(u64, ptr) -> s32".
	Proto       string `json:"proto"`
	Bucket      string `json:"bucket"`
	Mix         string `json:"mix"`
	ErrorInject bool   `json:"error_inject,omitempty"`
	Progs       []Prog `json:"progs"`
	// Funcs are the functions of a multi-link shape, Func the first of
	// them.
	Funcs []ShapeFunc `json:"funcs,omitempty"`
}

// ShapeName is the case name of a (function, mix) shape; function names
// are C identifiers and mix names [a-z-], so it is a valid file name.
func ShapeName(fn, mix string) string { return "shape-" + fn + "-" + mix }

// ShapeMixes are the program mixes a shapes job knows. Every program is
// trivial (returns 0); "cookie" programs call bpf_session_cookie and "ip"
// programs bpf_get_func_ip, which is what makes the trampoline reserve a
// cookie slot or store the IP.
var ShapeMixes = map[string][]Prog{
	"fentry":          {{Name: "e", Kind: "fentry"}},
	"fentry-ip":       {{Name: "e", Kind: "fentry", IP: true}},
	"fexit":           {{Name: "x", Kind: "fexit"}},
	"fmodret":         {{Name: "m", Kind: "fmod_ret"}},
	"fmodret-fexit":   {{Name: "m", Kind: "fmod_ret"}, {Name: "x", Kind: "fexit"}},
	"fsession":        {{Name: "s", Kind: "fsession"}},
	"fsession-cookie": {{Name: "s", Kind: "fsession", Cookie: true}},
	"all":             {{Name: "e", Kind: "fentry"}, {Name: "x", Kind: "fexit"}, {Name: "s", Kind: "fsession", Cookie: true, IP: true}},
}

// DefaultShapeMixes are the mixes run when a job names none.
var DefaultShapeMixes = []string{"fentry", "fexit", "fentry-ip", "fsession-cookie", "all", "fmodret"}
