package kernels

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A Rebuild is a build compiled again from Debian's own source package of
// it (linux-source-X.Y at the build's package version) with a config
// Debian built, a few options changed. It exists where no served build
// has what tramp must measure:
//
//   - Debian builds s390x for z10, and arch/s390 selects HAVE_EBPF_JIT
//     only with the z196 facilities, so no served s390x kernel has a BPF
//     JIT or a trampoline. The same source and config built for z196
//     (arch/s390's default march) has both.
//   - The archive's index lists a build whose package the pool does not
//     serve (7.3.4 for riscv64 and s390x answer 404): its source package
//     is served, and the config of the arch's nearest served build is
//     carried to it by olddefconfig.
type Rebuild struct {
	// Name is how --kernel names it: the base build and a suffix.
	Name string
	// Base is the build it is a rebuild of: the catalog's entry for it
	// gives the source package's version and the kernel release (its
	// ABI). Its binary package need not be served.
	Base string
	Arch Arch
	// ConfigFrom is the served build whose config it starts from, when
	// Base's own is not served ("" is Base).
	ConfigFrom string
	// Toolchain is the Debian suite whose compilers build it, made into a
	// chroot by debootstrap ("" is the host's compilers): the suite
	// Debian built Base in, where the host's compilers are too old.
	Toolchain string
	// Set are the options changed in the base config before
	// olddefconfig: a value, or "" for "is not set".
	Set []Option
	// Want are what the config must say after olddefconfig: a toolchain
	// that cannot give one (pahole too old for BTF, say) fails the build
	// here, not at boot.
	Want []Option
	// Why says what the rebuild is for, in tramp vm kernels' words.
	Why string
}

// Option is one config option, CONFIG_ prefix included.
type Option struct{ Name, Value string }

// noSigningKeys empties the key files Debian's configs name: Debian's
// signing keys are not in the source package.
var noSigningKeys = []Option{{"CONFIG_SYSTEM_TRUSTED_KEYS", `""`}, {"CONFIG_SYSTEM_REVOCATION_KEYS", `""`}}

// tracingWants are the options without which tramp cannot attach, read
// the BTF or capture images: the guest's needs, held after olddefconfig.
var tracingWants = []Option{
	{"CONFIG_BPF_JIT", "y"}, {"CONFIG_DEBUG_INFO_BTF", "y"},
	{"CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "y"}, {"CONFIG_KALLSYMS_ALL", "y"},
	{"CONFIG_PROC_KCORE", "y"}, {"CONFIG_VIRTIO_CONSOLE", "y"},
	// /proc/kcore lists the modules area, where s390x's execmem puts
	// the BPF programs and trampolines, only with CONFIG_MODULES.
	{"CONFIG_MODULES", "y"},
}

// z196 turns Debian's s390x z10 config into one with the BPF JIT.
var z196 = []Option{
	{"CONFIG_MARCH_Z10", ""}, {"CONFIG_MARCH_Z196", "y"},
	{"CONFIG_BPF_JIT", "y"}, {"CONFIG_BPF_JIT_DEFAULT_ON", "y"},
}

// Rebuilds are the rebuilds tramp knows.
var Rebuilds = []Rebuild{{
	Name: "debian-7.2.13+z196", Base: "debian-7.2.13", Arch: S390X,
	Set:  append(append([]Option(nil), z196...), noSigningKeys...),
	Want: append([]Option{{"CONFIG_MARCH_Z196", "y"}}, tracingWants...),
	Why:  "Debian's s390x 7.2.13 source and config built for z196: the BPF JIT Debian's z10 build lacks",
}, {
	// Debian built 7.3.4 for trixie-backports with trixie's gcc 14 (its
	// amd64 config says "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19)");
	// its s390x config is not served, 7.3-rc7's (Debian's 7.3 config) is.
	Name: "debian-7.3.4+z196", Base: "debian-7.3.4", Arch: S390X, ConfigFrom: "debian-7.3-rc7", Toolchain: "trixie",
	Set:  append(append([]Option(nil), z196...), noSigningKeys...),
	Want: append([]Option{{"CONFIG_MARCH_Z196", "y"}}, tracingWants...),
	Why:  "Debian's 7.3.4 source with its 7.3 s390x config, built for z196 by trixie's gcc 14: the pool does not serve 7.3.4 s390x, and Debian's z10 builds lack the BPF JIT",
}, {
	// The newest served riscv64 config is 7.2.13's. Its options that
	// change the trampoline (RISCV_ISA_C, _ZBA, _ZBB, the ftrace ones)
	// are held after olddefconfig; host gcc 12 cannot have
	// DYNAMIC_FTRACE with compressed instructions (no
	// -fmin-function-alignment), trixie's gcc 14 can.
	Name: "debian-7.3.4+rebuild", Base: "debian-7.3.4", Arch: RISCV64, ConfigFrom: "debian-7.2.13", Toolchain: "trixie",
	Set: noSigningKeys,
	Want: append([]Option{{"CONFIG_RISCV_ISA_C", "y"}, {"CONFIG_RISCV_ISA_ZBA", "y"}, {"CONFIG_RISCV_ISA_ZBB", "y"},
		{"CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS", "y"}}, tracingWants...),
	Why: "Debian's 7.3.4 source with its 7.2.13 riscv64 config, built by trixie's gcc 14: the pool does not serve 7.3.4 riscv64",
}}

// LookupRebuild finds the rebuild named name for arch.
func LookupRebuild(name string, arch Arch) (Rebuild, bool) {
	for _, r := range Rebuilds {
		if r.Name == name && r.Arch == arch {
			return r, true
		}
	}
	return Rebuild{}, false
}

// IsRebuildName says whether name is a rebuild's, on any arch.
func IsRebuildName(name string) bool {
	for _, r := range Rebuilds {
		if r.Name == name {
			return true
		}
	}
	return false
}

// rebuildTargets are, per arch, the kernel's ARCH=, the cross compiler's
// prefix and the image make leaves.
var rebuildTargets = map[Arch]struct{ karch, cross, image string }{
	S390X:   {"s390", "s390x-linux-gnu-", "arch/s390/boot/bzImage"},
	RISCV64: {"riscv", "riscv64-linux-gnu-", "arch/riscv/boot/Image"},
}

// RebuildTools are the host commands a rebuild runs, with the Debian
// package that has each.
var RebuildTools = []struct{ Command, Package string }{
	{"make", "make"}, {"gcc", "gcc"}, {"flex", "flex"}, {"bison", "bison"}, {"bc", "bc"},
	{"pahole", "dwarves"}, {"xz", "xz-utils"}, {"zstd", "zstd"}, {"dpkg-deb", "dpkg"},
	{"s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu"},
}

// rebuildHeaders are the headers the kernel's host tools (objtool,
// sign-file, resolve_btfids) build against, with their Debian packages.
var rebuildHeaders = []struct{ Path, Package string }{
	{"/usr/include/gelf.h", "libelf-dev"}, {"/usr/include/openssl/ssl.h", "libssl-dev"},
}

// missingTools lists the Debian packages whose commands or headers are
// not there (scripts/setup with TRAMP_SETUP_REBUILD=1 installs them).
func missingTools() []string {
	var pkgs []string
	for _, t := range RebuildTools {
		if _, err := exec.LookPath(t.Command); err != nil {
			pkgs = append(pkgs, t.Package)
		}
	}
	for _, h := range rebuildHeaders {
		if _, err := os.Stat(h.Path); err != nil {
			pkgs = append(pkgs, h.Package)
		}
	}
	return pkgs
}

// EditConfig applies set to a kernel config: each option's line is
// replaced (or appended), "" writing "# CONFIG_X is not set". The =m
// options stay: make builds only the image, never Debian's modules, and
// turning CONFIG_MODULES off would build every one of them in instead.
func EditConfig(config []byte, set []Option) []byte {
	want := map[string]string{}
	for _, o := range set {
		want[o.Name] = o.Value
	}
	line := func(name, value string) string {
		if value == "" {
			return "# " + name + " is not set"
		}
		return name + "=" + value
	}
	var out bytes.Buffer
	done := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(config))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		name := ""
		switch {
		case strings.HasPrefix(l, "CONFIG_"):
			name, _, _ = strings.Cut(l, "=")
		case strings.HasPrefix(l, "# CONFIG_") && strings.HasSuffix(l, " is not set"):
			name = strings.TrimSuffix(strings.TrimPrefix(l, "# "), " is not set")
		}
		if v, ok := want[name]; ok {
			l = line(name, v)
			done[name] = true
		}
		out.WriteString(l + "\n")
	}
	for _, o := range set {
		if !done[o.Name] {
			out.WriteString(line(o.Name, o.Value) + "\n")
			done[o.Name] = true
		}
	}
	return out.Bytes()
}

// Rebuild compiles r and puts it in the cache as a build named r.Name:
// the image, its config and a meta.json whose Package and Version name
// the source package. jobs is make's -j. The source tree stays under
// <cache>/rebuild/<name>/<arch> (inside the toolchain's chroot, for a
// rebuild with one), so that a second run recompiles only what changed;
// make's output goes to build.log there.
func (f *Fetcher) Rebuild(ctx context.Context, r Rebuild, jobs int) (*Kernel, error) {
	tgt, ok := rebuildTargets[r.Arch]
	if !ok {
		return nil, fmt.Errorf("rebuild %s: no recipe for %s", r.Name, r.Arch)
	}
	var tc *toolchain
	if r.Toolchain != "" {
		var err error
		if tc, err = f.toolchain(ctx, r.Toolchain); err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", r.Name, err)
		}
	} else if miss := missingTools(); len(miss) > 0 {
		return nil, fmt.Errorf("rebuild %s needs commands from these Debian packages: %s (apt-get install %s)", r.Name, strings.Join(miss, ", "), strings.Join(miss, " "))
	}
	// The base build as the archive's index states it: its package
	// version names the source, its ABI the release. Its binary need not
	// be served.
	cat, err := f.Catalog(ctx, []Arch{r.Arch})
	if err != nil {
		return nil, err
	}
	bs, err := Select(cat, []string{r.Base})
	if err != nil || len(bs) != 1 {
		return nil, fmt.Errorf("rebuild %s: the archive's index has no single build %s for %s (%v)", r.Name, r.Base, r.Arch, err)
	}
	base := bs[0]
	series, err := releaseSeries(base.Version)
	if err != nil {
		return nil, err
	}
	cfgFrom := r.ConfigFrom
	if cfgFrom == "" {
		cfgFrom = r.Base
	}
	cfgKernel, err := f.Get(ctx, cfgFrom, r.Arch)
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: the build whose config it takes: %w", r.Name, err)
	}
	if cfgKernel.Config == "" {
		return nil, fmt.Errorf("rebuild %s: the cached %s has no config; fetch it again", r.Name, cfgFrom)
	}
	root, err := f.cacheRoot()
	if err != nil {
		return nil, err
	}
	// inner is the tree's path as make sees it: inside the chroot, for a
	// rebuild with a toolchain.
	inner := filepath.Join("/", "rebuild", r.Name, string(r.Arch))
	work := filepath.Join(root, inner)
	if tc != nil {
		work = filepath.Join(tc.root, inner)
	}
	srcPkg := "linux-source-" + series
	src := filepath.Join(work, srcPkg)
	if _, err := os.Stat(filepath.Join(src, "Makefile")); err != nil {
		if err := f.unpackSource(ctx, srcPkg, base.PkgVersion, work); err != nil {
			return nil, fmt.Errorf("rebuild %s: %w", r.Name, err)
		}
	}
	cfg, err := os.ReadFile(cfgKernel.Config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, ".config"), EditConfig(cfg, r.Set), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(work, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	release := base.ABI + strings.TrimPrefix(r.Name, r.Base) + "-" + r.Arch.Flavour()
	mk := func(targets ...string) error {
		args := append([]string{"ARCH=" + tgt.karch, "CROSS_COMPILE=" + tgt.cross, "-j" + strconv.Itoa(max(jobs, 1)),
			"KERNELRELEASE=" + release, "KBUILD_BUILD_USER=tramp", "KBUILD_BUILD_HOST=tramp"}, targets...)
		f.logf("make %s (log: %s)", strings.Join(targets, " "), logPath)
		var cmd *exec.Cmd
		if tc != nil {
			cmd = tc.command(ctx, filepath.Join(inner, srcPkg), "make", args...)
		} else {
			cmd = exec.CommandContext(ctx, "make", args...)
			cmd.Dir = src
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			tail, _ := os.ReadFile(logPath)
			return fmt.Errorf("make %s: %v\n%s", strings.Join(targets, " "), err, lastLines(string(tail), 15))
		}
		return nil
	}
	if err := mk("olddefconfig"); err != nil {
		return nil, err
	}
	got, err := os.ReadFile(filepath.Join(src, ".config"))
	if err != nil {
		return nil, err
	}
	have := parseConfigValues(got)
	for _, w := range r.Want {
		if have[w.Name] != w.Value {
			return nil, fmt.Errorf("rebuild %s: after olddefconfig %s is %q, want %q (a toolchain too old for it? %s)", r.Name, w.Name, have[w.Name], w.Value, have["CONFIG_CC_VERSION_TEXT"])
		}
	}
	if err := mk(filepath.Base(tgt.image)); err != nil {
		return nil, err
	}
	dir, err := f.Dir(r.Name, r.Arch)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	img, err := os.Open(filepath.Join(src, tgt.image))
	if err != nil {
		return nil, err
	}
	defer img.Close()
	if err := writeAtomicFrom(filepath.Join(dir, "vmlinuz"), img); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, "config"), got); err != nil {
		return nil, err
	}
	sum, size, err := hashFile(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		return nil, err
	}
	k := &Kernel{Profile: r.Name, Arch: r.Arch, Package: srcPkg, Version: base.PkgVersion, SHA256: sum, Size: size,
		HasConfig: true, FetchedAt: time.Now().UTC().Truncate(time.Second), BuiltFrom: r.Base,
		ConfigFrom: r.ConfigFrom, Toolchain: r.Toolchain, Compiler: strings.Trim(have["CONFIG_CC_VERSION_TEXT"], `"`)}
	meta, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, "meta.json"), append(meta, '\n')); err != nil {
		return nil, err
	}
	return f.Cached(r.Name, r.Arch)
}

// unpackSource downloads pkg at version (the source package ships the
// tree as usr/src/<pkg>.tar.xz) and unpacks the tree into work.
func (f *Fetcher) unpackSource(ctx context.Context, pkg, version, work string) error {
	sess, err := f.session(ctx)
	if err != nil {
		return err
	}
	f.logf("downloading %s %s", pkg, version)
	deb, err := sess.download(ctx, pkg+"="+version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(work, "deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", filepath.Base(deb), err, out)
	}
	tarball := filepath.Join(tmp, "usr", "src", pkg+".tar.xz")
	f.logf("unpacking %s", filepath.Base(tarball))
	if out, err := exec.CommandContext(ctx, "tar", "-xf", tarball, "-C", work).CombinedOutput(); err != nil {
		return fmt.Errorf("tar -xf %s: %v: %s", filepath.Base(tarball), err, out)
	}
	os.Remove(deb)
	return nil
}

// releaseSeries is "7.2" of a release "7.2.13+deb14-s390x".
func releaseSeries(rel string) (string, error) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return "", fmt.Errorf("kernel release %q has no major.minor", rel)
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	if _, err := strconv.Atoi(parts[0]); err != nil || minor == "" {
		return "", fmt.Errorf("kernel release %q has no major.minor", rel)
	}
	return parts[0] + "." + minor, nil
}

// parseConfigValues reads CONFIG_X=value lines; an option that is not
// set is absent.
func parseConfigValues(data []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			m[k] = v
		}
	}
	return m
}
