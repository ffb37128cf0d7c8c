package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/initramfs"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// GuestPackage is the import path of the guest program.
const GuestPackage = "github.com/bpftramp/tramp/cmd/tramp-guest"

const modulePath = "github.com/bpftramp/tramp"

// ModuleRoot finds the tramp source tree: $TRAMP_SRC, or the nearest
// directory at or above the working directory whose go.mod declares the
// tramp module.
func ModuleRoot() (string, error) {
	if d := os.Getenv("TRAMP_SRC"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the tramp source tree (go.mod of " + modulePath + ") above the working directory; run from the checkout or set TRAMP_SRC")
		}
		dir = parent
	}
}

// goTool finds the go command: the one this binary was built with if it
// still exists, else the one on PATH.
func goTool() (string, error) {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the guest needs the go command: %w", err)
	}
	return p, nil
}

// BuildGuest compiles cmd/tramp-guest as a static binary for arch
// (CGO_ENABLED=0, -trimpath, -ldflags=-s -w) into
// <cacheDir>/guest/<source tree hash>/<arch>/tramp-guest and returns its path. An empty cacheDir
// means kernels.DefaultCacheDir(). The go command's own cache makes a
// rebuild of unchanged sources fast; builds for the same arch are
// serialised across processes and the binary is replaced atomically.
func BuildGuest(ctx context.Context, arch kernels.Arch, cacheDir string) (string, error) {
	if cacheDir == "" {
		d, err := kernels.DefaultCacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	src, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	gotool, err := goTool()
	if err != nil {
		return "", err
	}
	// One directory per source tree: two checkouts building at once must
	// not replace each other's guest.
	sum := sha256.Sum256([]byte(src))
	dir := filepath.Join(cacheDir, "guest", hex.EncodeToString(sum[:6]), string(arch))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	out := filepath.Join(dir, "tramp-guest")
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, gotool, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, GuestPackage)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch.GOARCH())
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building the %s guest: %v\n%s", arch, err, strings.TrimSpace(string(b)))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Boot describes one VM run.
type Boot struct {
	// Kernel is a profile name (see kernels.Profiles) or a kernel image
	// path; empty means kernels.DefaultProfile.
	Kernel string
	Arch   kernels.Arch
	// Job is written to /job.json; its zero value runs the hello job.
	Job guestapi.Job
	// Files are extra files for the initramfs.
	Files []initramfs.File
	// QEMU holds the run options (timeout, kernel command line, callbacks,
	// WorkDir). Arch, Kernel and Initrd are filled in by Run.
	QEMU qemu.Config
	// Fetcher resolves the kernel; nil means a default Fetcher.
	Fetcher *kernels.Fetcher
	// Guest is a prebuilt guest binary; empty means BuildGuest.
	Guest string
	// CacheDir is the tramp cache root; empty means the default.
	CacheDir string
	// Log receives progress lines (building the guest); nil means the
	// Fetcher's Log, and none when that is nil too.
	Log io.Writer
}

// guestBuildSaid holds the arches whose guest build was announced.
var guestBuildSaid sync.Map

// Prepare resolves the kernel, builds the guest and writes the initramfs
// into dir, returning the completed QEMU config.
func Prepare(ctx context.Context, b Boot, dir string) (qemu.Config, *kernels.Kernel, error) {
	cfg := b.QEMU
	if b.Arch == "" {
		return cfg, nil, errors.New("harness: no architecture")
	}
	spec := b.Kernel
	if spec == "" {
		spec = kernels.DefaultProfile
	}
	f := b.Fetcher
	if f == nil {
		f = &kernels.Fetcher{CacheDir: b.CacheDir}
		defer f.Close()
	}
	k, err := f.Resolve(ctx, spec, b.Arch)
	if err != nil {
		return cfg, nil, err
	}
	guest := b.Guest
	if guest == "" {
		log := b.Log
		if log == nil {
			log = f.Log
		}
		if _, said := guestBuildSaid.LoadOrStore(b.Arch, true); said {
			log = nil // once per arch and process
		}
		if log != nil {
			fmt.Fprintf(log, "building the %s guest (go build %s; the first build of a checkout takes a minute, later ones a second)\n", b.Arch, GuestPackage)
		}
		start := time.Now()
		if guest, err = BuildGuest(ctx, b.Arch, b.CacheDir); err != nil {
			return cfg, k, err
		}
		if log != nil && time.Since(start) > 2*time.Second {
			fmt.Fprintf(log, "built the %s guest in %s\n", b.Arch, time.Since(start).Round(100*time.Millisecond))
		}
	}
	init, err := os.ReadFile(guest)
	if err != nil {
		return cfg, k, err
	}
	job := b.Job
	if job.Kind == "" {
		job.Kind = guestapi.JobHello
	}
	jobJSON, err := json.Marshal(job)
	if err != nil {
		return cfg, k, err
	}
	files := append([]initramfs.File{{Path: guestapi.JobPath, Data: jobJSON}}, b.Files...)
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := initramfs.WriteFile(initrd, init, files...); err != nil {
		return cfg, k, err
	}
	cfg.Arch, cfg.Kernel, cfg.Initrd = b.Arch, k.Path, initrd
	return cfg, k, nil
}

// Run prepares and boots b. The result is non-nil whenever QEMU was
// started, and then holds every record received, even on error.
func Run(ctx context.Context, b Boot) (*qemu.Result, error) {
	dir := b.QEMU.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "tramp-boot-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg, _, err := Prepare(ctx, b, dir)
	if err != nil {
		return nil, err
	}
	return qemu.Run(ctx, cfg)
}
