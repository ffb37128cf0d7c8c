// Package record runs cases in real kernels under QEMU, keeps what each
// kernel did as a Recording (cases/testdata/<kernel>/<arch>/<case>.json),
// and compares recordings with the trampoline model.
package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// Schema is the version of the Recording format.
const Schema = 1

// KernelFacts describe the booted kernel and machine.
type KernelFacts struct {
	Release         string            `json:"release"`
	Cmdline         string            `json:"cmdline"`
	CPUModel        string            `json:"cpu_model"`
	CPUFamily       int               `json:"cpu_family,omitempty"`
	Accel           string            `json:"accel"`
	Vulnerabilities map[string]string `json:"vulnerabilities,omitempty"`
	// ReturnThunk and CallDepthTracking are what the kernel log said
	// (x86): the last "active return thunk: NAME" and "Setting up call
	// depth tracking". Recordings made before tramp read the log lack them.
	ReturnThunk       string `json:"return_thunk,omitempty"`
	CallDepthTracking bool   `json:"call_depth_tracking,omitempty"`
}

// Recording is what one real kernel did with one case: every step's
// outcome, what the observer programs saw at each run, and the trampoline
// image after every step that left one in place.
type Recording struct {
	Schema  int    `json:"schema"`
	Case    string `json:"case"`
	Profile string `json:"kernel"`
	Arch    string `json:"arch"`
	// KASLR: the kernel booted with address-space randomisation (on arm64
	// it decides between bl and indirect calls).
	KASLR bool `json:"kaslr,omitempty"`
	// CPU is the QEMU -cpu model the boot asked for ("" is the default:
	// max under TCG); Append the kernel command-line words added to the
	// harness's own. Together they name a variant, filed beside the
	// default recording (see PathOf).
	CPU          string                  `json:"cpu,omitempty"`
	Append       []string                `json:"append,omitempty"`
	Kernel       KernelFacts             `json:"kernel_facts"`
	Start        *guestapi.Start         `json:"start"`
	Steps        []guestapi.Step         `json:"steps"`
	Observations []guestapi.Observations `json:"observations,omitempty"`
	Captures     []guestapi.Capture      `json:"captures,omitempty"`
	// Errors are problems that stopped the case early in the guest.
	Errors []string `json:"errors,omitempty"`
	// Complete: the guest finished the case (job_done arrived).
	Complete bool `json:"complete"`
	// Source is the full text of an equivalent case, for recordings that
	// do not come from a corpus file (tramp vm shapes).
	Source string `json:"source,omitempty"`
}

// JobFor translates a case into the guest's job: its target, programs and
// every step in order, with image capture on.
func JobFor(c *cases.Case) guestapi.BPFJob {
	j := guestapi.BPFJob{Target: c.Target.Name, Capture: true}
	if a := c.Target.Attrs; a.BPFProg {
		tp := &guestapi.TargetProg{TailCall: a.TailCallReachable, TailCallSubprog: a.TailCallViaSubprog, TailCallTaken: a.TailCallTaken,
			GlobalSubprog: a.GlobalSubprog,
			Args:          []string{}, Ret: c.Target.Proto.Ret.String()}
		for _, t := range c.Target.Proto.Args {
			tp.Args = append(tp.Args, t.String())
		}
		j.TargetProg = tp
	}
	for _, p := range c.Progs {
		j.Progs = append(j.Progs, guestapi.Prog{Name: p.Name, Kind: p.Kind.String(), Cookie: p.Cookie, IP: p.IP,
			Sleepable: p.Sleepable, LinkCookie: p.LinkCookie, Returns: p.Returns})
	}
	for _, s := range c.Steps {
		op := guestapi.Op{Op: string(s.Op), Line: s.Line}
		if s.Prog != nil {
			op.Prog = s.Prog.Name
		}
		j.Ops = append(j.Ops, op)
	}
	return j
}

// BatchJob is the guest job that runs several cases in one boot.
func BatchJob(cs []*cases.Case) (guestapi.Job, error) { return batchJob(cs, nil) }

func batchJob(cs []*cases.Case, extra []guestapi.NamedJob) (guestapi.Job, error) {
	var b guestapi.Batch
	for _, c := range cs {
		b.Jobs = append(b.Jobs, guestapi.NamedJob{Name: c.Name, Job: JobFor(c)})
	}
	b.Jobs = append(b.Jobs, extra...)
	params, err := json.Marshal(b)
	if err != nil {
		return guestapi.Job{}, err
	}
	return guestapi.Job{Kind: guestapi.JobBPF, Params: params}, nil
}

// Tail lengths kept after the code of a captured image.
const (
	x86Tail   = 64 + 16 // BPF_INSN_SAFETY zeros, then some pack fill
	arm64Tail = 16      // after the run of brk words
)

// trimCapture cuts a capture's bytes to the image: the code, the x86
// 64-byte safety tail (zeros under init_on_alloc) or the arm64 brk #0x100
// fill up to the size-pass length, and a few bytes after; the bytes of
// whatever follows in the pack are dropped. It also drops the kallsyms
// listing, which is large and the same in every capture of a boot.
func trimCapture(c *guestapi.Capture, arch string) {
	c.BPFSyms = nil
	b, err := hex.DecodeString(c.Bytes)
	if err != nil {
		return
	}
	end := len(b)
	switch arch {
	case "x86_64":
		// The code ends where 64 zero bytes followed by 0xcc fill start.
		pat := append(bytes.Repeat([]byte{0}, 64), 0xcc)
		if i := bytes.Index(b, pat); i >= 0 {
			end = min(len(b), i+x86Tail)
		}
	case "arm64":
		brk := []byte{0x00, 0x20, 0x20, 0xd4}
		for i := 0; i+4 <= len(b); i += 4 {
			if bytes.Equal(b[i:i+4], brk) {
				j := i
				for j+4 <= len(b) && bytes.Equal(b[j:j+4], brk) {
					j += 4
				}
				end = min(len(b), j+arm64Tail)
				break
			}
		}
	}
	c.Bytes = hex.EncodeToString(b[:end])
}

// Path is where a recording lives under a testdata root.
func Path(root, profile, arch, name string) string {
	return filepath.Join(root, profile, arch, name+".json")
}

// PathOf is where r lives under root; a KASLR boot's recording is
// <case>.kaslr.json beside the nokaslr one, and a boot with another CPU
// model or extra kernel command-line words is <case>.<variant>.json (and
// <case>.<variant>.kaslr.json), see Variant.
func PathOf(root string, r *Recording) string {
	name := r.Case
	if v := VariantOf(r); v != "" {
		name += "." + v
	}
	if r.KASLR {
		name += ".kaslr"
	}
	return Path(root, r.Profile, r.Arch, name)
}

// Variant names a boot's CPU model and extra command-line words for file
// names: "" for the default boot, else "cpu-<model>" and then each word,
// lower case, with every character other than a-z, 0-9 and '-' made '-'
// ("cpu-skylake-client-retbleed-stuff").
func Variant(cpu string, appendWords []string) string {
	var parts []string
	if cpu != "" {
		parts = append(parts, "cpu-"+slug(cpu))
	}
	for _, w := range appendWords {
		parts = append(parts, slug(w))
	}
	return strings.Join(parts, "-")
}

// VariantOf names r's boot for file names: Variant of its CPU and words,
// and for a KVM boot "kvm-<host CPU model>" before them, so that KVM
// recordings lie beside the TCG ones ("kvm-amd-epyc-7b13-cpu-host").
func VariantOf(r *Recording) string {
	v := Variant(r.CPU, r.Append)
	if r.Kernel.Accel != "kvm" {
		return v
	}
	k := "kvm-" + slug(r.Kernel.CPUModel)
	if r.Kernel.CPUModel == "" {
		k = "kvm"
	}
	if v != "" {
		k += "-" + v
	}
	return k
}

func slug(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// Write stores a recording under root, atomically.
func Write(root string, r *Recording) (string, error) {
	p := PathOf(root, r)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// Load reads a recording and checks its schema.
func Load(path string) (*Recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Recording
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %d, this tramp reads %d", path, r.Schema, Schema)
	}
	if r.Case == "" || r.Profile == "" || r.Arch == "" {
		return nil, fmt.Errorf("%s: case, kernel and arch are required", path)
	}
	return &r, nil
}

// LoadAll reads every recording under root (root/<kernel>/<arch>/*.json).
func LoadAll(root string) ([]*Recording, error) {
	paths, err := filepath.Glob(filepath.Join(root, "*", "*", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Recording
	for _, p := range paths {
		r, err := Load(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
