package recording

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	// Stated is what the build states about itself, read on the host
	// from its image and package before the boot (package facts); nil in
	// recordings made before tramp kept it.
	Stated *StatedFacts `json:"stated,omitempty"`
}

// StatedFacts are the kernel build's own words that the model consults:
// with the delta table they make the model profile of a build that has
// no table profile, offline.
type StatedFacts struct {
	// SlotLimit is BTF's enum value BPF_MAX_TRAMP_LINKS.
	SlotLimit int `json:"bpf_max_tramp_links"`
	// AttachTypes are the tracing values of BTF's enum bpf_attach_type
	// that the build has.
	AttachTypes map[string]uint64 `json:"attach_types"`
	// Kfuncs are the kfuncs tramp looks for that BTF has (the session
	// kfuncs).
	Kfuncs []string `json:"kfuncs,omitempty"`
	// Config holds the build config's options tramp consults ("not set"
	// for an absent one); nil when no config was served.
	Config map[string]string `json:"config,omitempty"`
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

// Load reads a recording file (Parse).
func Load(path string) (*Recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse decodes a recording and checks it: the schema this tramp reads,
// no field it does not know, and the case, kernel and arch it is filed
// under. name prefixes every error.
func Parse(name string, b []byte) (*Recording, error) {
	var r Recording
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more after the recording", name)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %d, this tramp reads %d", name, r.Schema, Schema)
	}
	if r.Case == "" || r.Profile == "" || r.Arch == "" {
		return nil, fmt.Errorf("%s: case, kernel and arch are required", name)
	}
	return &r, nil
}

// LoadAll reads every recording under root: root/<kernel>/<arch>/*.json
// and the packs root/<kernel>/<arch>.json.gz.
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
	packs, err := filepath.Glob(filepath.Join(root, "*", "*.json.gz"))
	if err != nil {
		return nil, err
	}
	for _, p := range packs {
		rs, err := LoadPack(p)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}
