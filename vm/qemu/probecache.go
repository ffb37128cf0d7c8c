package qemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpftramp/tramp/vm/kernels"
)

// ProbeValidity is how long a probe result on disk is believed. One
// `make test` starts many processes; each would otherwise pay for its own
// probe boot (7 s on a host whose KVM fails late).
const ProbeValidity = 24 * time.Hour

// EnvReprobe, set to 1, ignores probe results on disk.
const EnvReprobe = "TRAMP_ACCEL_REPROBE"

// probeRecord is a probe result kept on disk, with the host facts it was
// proven under; a result is used only where every fact is the same.
type probeRecord struct {
	Facts    map[string]string `json:"facts"`
	Decision Decision          `json:"decision"`
	At       time.Time         `json:"at"`
}

// hostFacts are what a KVM probe's outcome depends on: the QEMU binary
// (path, size, mtime), the host kernel, the host CPU, /dev/kvm itself,
// and the guest arch and CPU asked for.
func hostFacts(bin string, arch kernels.Arch, cpu string) (map[string]string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f := map[string]string{
		"qemu": fmt.Sprintf("%s %d %d", path, st.Size(), st.ModTime().UnixNano()),
		"arch": string(arch), "cpu": cpu,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f["host_kernel"] = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				f["host_cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if fi, err := os.Stat("/dev/kvm"); err == nil {
		if s, ok := fi.Sys().(*unix.Stat_t); ok {
			f["dev_kvm"] = fmt.Sprintf("%d %d", s.Rdev, s.Ctim.Sec)
		}
	}
	return f, nil
}

func probeCachePath(facts map[string]string) (string, error) {
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(facts) // map keys are sorted
	sum := sha256.Sum256(b)
	return filepath.Join(dir, "accel", hex.EncodeToString(sum[:8])+".json"), nil
}

// loadProbe returns a probe result proven under facts within
// ProbeValidity, if one is on disk.
func loadProbe(facts map[string]string, now time.Time) (Decision, bool) {
	if os.Getenv(EnvReprobe) == "1" {
		return Decision{}, false
	}
	p, err := probeCachePath(facts)
	if err != nil {
		return Decision{}, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Decision{}, false
	}
	var r probeRecord
	if json.Unmarshal(b, &r) != nil || now.Sub(r.At) > ProbeValidity || now.Before(r.At) || len(r.Facts) != len(facts) {
		return Decision{}, false
	}
	for k, v := range facts {
		if r.Facts[k] != v {
			return Decision{}, false
		}
	}
	if r.Decision.Accel != AccelKVM && r.Decision.Accel != AccelTCG {
		return Decision{}, false
	}
	d := r.Decision
	d.Reason += fmt.Sprintf("; probed %s ago, kept in %s (%s=1 probes again)", now.Sub(r.At).Round(time.Second), p, EnvReprobe)
	return d, true
}

// saveProbe keeps d for later processes; failing to is not an error.
func saveProbe(facts map[string]string, d Decision, now time.Time) {
	p, err := probeCachePath(facts)
	if err != nil {
		return
	}
	b, err := json.MarshalIndent(probeRecord{Facts: facts, Decision: d, At: now}, "", "  ")
	if err != nil || os.MkdirAll(filepath.Dir(p), 0o755) != nil {
		return
	}
	tmp := p + fmt.Sprintf(".%d.tmp", os.Getpid())
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, p)
	}
}
