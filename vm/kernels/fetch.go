package kernels

import (
	"archive/tar"
	"bufio"
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
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kernel is a kernel image ready to boot.
type Kernel struct {
	Profile string `json:"profile,omitempty"` // empty for a user-supplied file
	Arch    Arch   `json:"arch"`
	Path    string `json:"-"`                 // the image (bzImage or arm64 Image)
	Config  string `json:"-"`                 // kernel config file, if known
	Package string `json:"package,omitempty"` // Debian package it came from
	Version string `json:"version,omitempty"` // Debian package version
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	// HasConfig records whether a config file was cached next to the image.
	HasConfig bool      `json:"has_config"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// BuiltFrom names the build a rebuild (tramp vm build) took its
	// source from; Package and Version are then the source package's.
	BuiltFrom string `json:"built_from,omitempty"`
	// ConfigFrom names the served build whose config a rebuild started
	// from, where that is not BuiltFrom (whose own is not served).
	ConfigFrom string `json:"config_from,omitempty"`
	// Toolchain is the Debian suite whose compilers built a rebuild
	// ("" for the host's), and Compiler what its gcc said of itself.
	Toolchain string `json:"toolchain,omitempty"`
	Compiler  string `json:"compiler,omitempty"`
}

// Describe is a one-line human description.
func (k *Kernel) Describe() string {
	if k.Package == "" {
		return fmt.Sprintf("%s (%s, user-supplied)", k.Path, k.Arch)
	}
	return fmt.Sprintf("%s %s (%s) at %s", k.Package, k.Version, k.Arch, k.Path)
}

// UnavailableError says that a pinned kernel package is not on the mirror
// any more, and which cloud kernels are.
type UnavailableError struct {
	Profile   string
	Package   string
	Arch      Arch
	Available []string // kernel ABI versions, e.g. "7.2.13+deb14"
}

func (e *UnavailableError) Error() string {
	avail := "none"
	if len(e.Available) > 0 {
		avail = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("kernel profile %s: package %s (%s) is not available from the Debian mirror any more (suites %s); cloud kernels available for %s: %s. Pick one of those, or pass a kernel image path with --kernel",
		e.Profile, e.Package, e.Arch.Deb(), strings.Join(CatalogSuites, ", "), e.Arch.Deb(), avail)
}

// DefaultCacheDir is $TRAMP_CACHE_DIR, or os.UserCacheDir()/tramp.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("TRAMP_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w (set TRAMP_CACHE_DIR)", err)
	}
	return filepath.Join(d, "tramp"), nil
}

// Fetcher downloads kernels into a cache. The zero value uses
// DefaultCacheDir and /etc/apt. A Fetcher runs "apt-get update" at most
// once; call Close to remove its temporary apt state.
type Fetcher struct {
	CacheDir string    // tramp cache root; kernels go to CacheDir/kernels
	EtcApt   string    // where the machine's apt sources are; default /etc/apt
	Offline  bool      // use the cache only
	Log      io.Writer // progress messages; nil for none

	mu      sync.Mutex // guards sess and catalog
	sess    *aptSession
	catalog []Build
	getMu   sync.Mutex // one download at a time per Fetcher
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		fmt.Fprintf(f.Log, format+"\n", args...)
	}
}

func (f *Fetcher) cacheRoot() (string, error) {
	if f.CacheDir != "" {
		return f.CacheDir, nil
	}
	return DefaultCacheDir()
}

// Dir is where a profile's kernel for arch is cached.
func (f *Fetcher) Dir(profile string, arch Arch) (string, error) {
	root, err := f.cacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "kernels", profile, string(arch)), nil
}

// Resolve turns a --kernel value into a kernel: a profile name is fetched
// (or taken from the cache), anything else is taken as the path of a kernel
// image, whose architecture must match arch.
func (f *Fetcher) Resolve(ctx context.Context, spec string, arch Arch) (*Kernel, error) {
	if _, err := LookupProfile(spec); err == nil || IsBuildName(spec) {
		return f.Get(ctx, spec, arch)
	}
	if strings.ContainsRune(spec, os.PathSeparator) || fileExists(spec) {
		return FromFile(spec, arch)
	}
	_, err := LookupProfile(spec)
	return nil, err
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// FromFile describes a user-supplied kernel image after checking that it is
// an image for arch.
func FromFile(path string, arch Arch) (*Kernel, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	got, err := DetectArch(abs)
	if err != nil {
		return nil, err
	}
	if got != arch {
		return nil, fmt.Errorf("kernel %s is an %s image, not %s", path, got, arch)
	}
	sum, size, err := hashFile(abs)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Arch: arch, Path: abs, SHA256: sum, Size: size}
	if rel, err := DetectRelease(abs); err == nil {
		k.Config = FindConfig(abs, rel)
		k.HasConfig = k.Config != ""
	}
	return k, nil
}

// FindConfig looks for the build config of a user-supplied image: "config"
// or "config-<release>" beside it (as tramp's cache and /boot keep them),
// the ".config" of the build tree it sits in (arch/*/boot/ is three levels
// down), or /boot/config-<release>. It returns "" when there is none.
func FindConfig(image, release string) string {
	dir := filepath.Dir(image)
	cands := []string{filepath.Join(dir, "config"), filepath.Join(dir, "config-"+release)}
	for d, i := dir, 0; i < 4; d, i = filepath.Dir(d), i+1 {
		cands = append(cands, filepath.Join(d, ".config"))
	}
	cands = append(cands, "/boot/config-"+release)
	for _, c := range cands {
		if fileExists(c) {
			return c
		}
	}
	return ""
}

// DetectArch recognises an x86 bzImage (the "HdrS" setup header), an
// arm64 Image (the "ARM\x64" magic at offset 0x38), a riscv64 Image
// ("RISCV" at 0x30) or an s390x bzImage ("S390EP" at 0x10008).
func DetectArch(path string) (Arch, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 0x210)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case len(head) >= 0x206 && string(head[0x202:0x206]) == "HdrS":
		return X86_64, nil
	case len(head) >= 0x3c && string(head[0x38:0x3c]) == "ARM\x64":
		return ARM64, nil
	case len(head) >= 0x38 && string(head[0x30:0x38]) == "RISCV\x00\x00\x00":
		return RISCV64, nil
	}
	if s390, err := readAt(f, 0x10008, 6); err == nil && string(s390) == "S390EP" {
		return S390X, nil
	}
	return "", fmt.Errorf("%s is none of an x86 bzImage, an arm64 Image, a riscv64 Image and an s390x bzImage", path)
}

// Cached returns the cached kernel for profile and arch, or an error
// wrapping os.ErrNotExist when it has not been fetched.
func (f *Fetcher) Cached(profile string, arch Arch) (*Kernel, error) {
	dir, err := f.Dir(profile, arch)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var k Kernel
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "meta.json"), err)
	}
	k.Path = filepath.Join(dir, "vmlinuz")
	st, err := os.Stat(k.Path)
	if err != nil {
		return nil, err
	}
	if st.Size() != k.Size {
		return nil, fmt.Errorf("%s: size %d, metadata says %d: %w", k.Path, st.Size(), k.Size, os.ErrNotExist)
	}
	if k.HasConfig {
		k.Config = filepath.Join(dir, "config")
	}
	return &k, nil
}

// Get returns the kernel for profile and arch, downloading it unless it is
// cached. Concurrent callers, in this process or others, are serialised per
// cache entry by a file lock, and files appear in the cache only complete
// (written to a temporary name, then renamed).
//
// A name that is no named profile is looked up in the catalog of served
// builds (tramp vm kernels), unless it is cached already.
func (f *Fetcher) Get(ctx context.Context, profile string, arch Arch) (*Kernel, error) {
	p, err := LookupProfile(profile)
	if err != nil {
		if !IsBuildName(profile) {
			return nil, err
		}
		if k, cerr := f.Cached(profile, arch); cerr == nil {
			return k, nil
		}
		if r, ok := LookupRebuild(profile, arch); ok {
			return nil, fmt.Errorf("%s %s is not served but rebuilt here (%s), and is not in the cache: tramp vm build --kernel %s --arch %s (about 30 min on 2 cores)", profile, arch, r.Why, profile, arch)
		}
		if f.Offline {
			return nil, fmt.Errorf("kernel %s/%s is not in the cache and fetching is off (run: tramp vm fetch --kernel %s --arch %s)", profile, arch, profile, arch)
		}
		cat, cerr := f.Catalog(ctx, []Arch{arch})
		if cerr != nil {
			return nil, cerr
		}
		bs, serr := Select(cat, []string{profile})
		if serr != nil {
			return nil, serr
		}
		if len(bs) != 1 {
			return nil, fmt.Errorf("%s names %d builds for %s; name one", profile, len(bs), arch)
		}
		p = bs[0].Profile()
	}
	return f.get(ctx, p, arch)
}

func (f *Fetcher) get(ctx context.Context, p Profile, arch Arch) (*Kernel, error) {
	profile := p.Name
	if k, err := f.Cached(profile, arch); err == nil {
		return k, nil
	}
	if f.Offline {
		return nil, fmt.Errorf("kernel %s/%s is not in the cache and fetching is off (run: tramp vm fetch --kernel %s --arch %s)", profile, arch, profile, arch)
	}
	f.getMu.Lock()
	defer f.getMu.Unlock()
	dir, err := f.Dir(profile, arch)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k, err := f.Cached(profile, arch); err == nil {
		return k, nil // another process fetched it meanwhile
	}
	sess, err := f.session(ctx)
	if err != nil {
		return nil, err
	}
	pkg := p.Package(arch)
	if _, err := sess.run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg+":"+arch.Deb()); err != nil {
		avail, aerr := sess.available(ctx, arch)
		if aerr != nil {
			return nil, fmt.Errorf("package %s not found (%v), and listing the available kernels failed: %w", pkg, err, aerr)
		}
		return nil, &UnavailableError{Profile: profile, Package: pkg, Arch: arch, Available: avail}
	}
	f.logf("downloading %s (%s)", pkg, arch.Deb())
	deb, err := sess.download(ctx, pkg+":"+arch.Deb())
	if err != nil {
		return nil, err
	}
	k := &Kernel{Profile: profile, Arch: arch, Package: pkg, FetchedAt: time.Now().UTC().Truncate(time.Second)}
	if out, err := sess.run(ctx, "", "dpkg-deb", "-f", deb, "Version"); err == nil {
		k.Version = strings.TrimSpace(string(out))
	}
	found, err := extract(ctx, deb, dir)
	if err != nil {
		return nil, err
	}
	if !found["vmlinuz"] {
		return nil, fmt.Errorf("package %s holds no kernel image (looked for usr/lib/modules/*/vmlinuz, boot/vmlinuz-* and boot/vmlinux-*)", pkg)
	}
	if !found["config"] {
		// The config lives in linux-base for the split packages; it is
		// small and useful, but optional.
		base := p.BasePackage(arch)
		if bdeb, err := sess.download(ctx, base+":"+arch.Deb()); err != nil {
			f.logf("note: no %s (%v); continuing without the kernel config", base, firstLine(err))
		} else if bf, err := extract(ctx, bdeb, dir); err == nil {
			found["config"] = bf["config"]
		}
	}
	k.HasConfig = found["config"]
	k.Path = filepath.Join(dir, "vmlinuz")
	if k.SHA256, k.Size, err = hashFile(k.Path); err != nil {
		return nil, err
	}
	if got, err := DetectArch(k.Path); err != nil || got != arch {
		return nil, fmt.Errorf("package %s: extracted image is not an %s kernel (%v %v)", pkg, arch, got, err)
	}
	meta, _ := json.MarshalIndent(k, "", "  ")
	if err := writeAtomic(filepath.Join(dir, "meta.json"), append(meta, '\n')); err != nil {
		return nil, err
	}
	if k.HasConfig {
		k.Config = filepath.Join(dir, "config")
	}
	f.logf("cached %s", k.Describe())
	return k, nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// Close removes the temporary apt state.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess == nil {
		return nil
	}
	err := os.RemoveAll(f.sess.dir)
	f.sess = nil
	return err
}

// aptSession is a private apt state (lists, cache, sources) that sees the
// kernel suites.
type aptSession struct {
	dir  string
	opts []string
}

// debianMirror is the Debian mirror the machine's apt sources use
// (f.EtcApt, default /etc/apt), with its signing key.
func (f *Fetcher) debianMirror() (uri, signedBy string, err error) {
	etc := f.EtcApt
	if etc == "" {
		etc = "/etc/apt"
	}
	srcs, err := LoadSources(etc)
	if err != nil {
		return "", "", err
	}
	return PickDebian(srcs)
}

func (f *Fetcher) session(ctx context.Context) (*aptSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess != nil {
		return f.sess, nil
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("fetching kernels needs %s (a Debian machine's apt): %w", tool, err)
		}
	}
	uri, signedBy, err := f.debianMirror()
	if err != nil {
		return nil, err
	}
	root, err := f.cacheRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(root, "apt-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "debs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	list := filepath.Join(dir, "kernels.sources")
	if err := os.WriteFile(list, RenderSources(uri, signedBy, CatalogSuites), 0o644); err != nil {
		return nil, err
	}
	s := &aptSession{dir: dir, opts: AptOptions(list, dir, os.Geteuid() == 0)}
	f.logf("apt-get update for suites %s from %s", strings.Join(CatalogSuites, ", "), uri)
	if _, err := s.run(ctx, "", "apt-get", "-q", "update"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("apt-get update for the kernel suites failed: %w", err)
	}
	f.sess = s
	return s, nil
}

// AptOptions are the apt -o settings that confine apt to a private state
// directory and the given sources file, seeing the packages of every
// arch tramp boots.
func AptOptions(sourcesFile, stateDir string, root bool) []string {
	o := []string{
		"Dir::Etc::SourceList=" + sourcesFile,
		"Dir::Etc::SourceParts=/dev/null",
		"Dir::Etc::Preferences=/dev/null",
		"Dir::Etc::PreferencesParts=/dev/null",
		"Dir::State::Lists=" + filepath.Join(stateDir, "lists"),
		"Dir::Cache=" + filepath.Join(stateDir, "cache"),
		"Dir::State::status=/dev/null",
		"APT::Architectures=amd64,arm64,riscv64,s390x",
		// Only the package indexes: no translations, no AppStream data.
		"Acquire::Languages=none",
		"Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
		"Acquire::IndexTargets::deb::CNF::DefaultEnabled=false",
	}
	if root {
		// Our private directories are not readable by the _apt sandbox
		// user; say so instead of letting apt warn on every download.
		o = append(o, "APT::Sandbox::User=root")
	}
	var args []string
	for _, x := range o {
		args = append(args, "-o", x)
	}
	return args
}

func (s *aptSession) run(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	if tool == "apt-get" || tool == "apt-cache" {
		args = append(append([]string(nil), s.opts...), args...)
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args[len(args)-min(len(args), 2):], " "), err, lastLines(stderr.String()+string(out), 8))
	}
	return out, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// debPackageName is the package's name in an apt-get download argument
// "name", "name:arch" or "name=version": what the .deb's name starts
// with.
func debPackageName(arg string) string {
	name, _, _ := strings.Cut(arg, ":")
	name, _, _ = strings.Cut(name, "=")
	return name
}

func (s *aptSession) download(ctx context.Context, pkg string) (string, error) {
	dir := filepath.Join(s.dir, "debs")
	if _, err := s.run(ctx, dir, "apt-get", "-q", "download", pkg); err != nil {
		return "", err
	}
	m, _ := filepath.Glob(filepath.Join(dir, debPackageName(pkg)+"_*.deb"))
	if len(m) != 1 {
		return "", fmt.Errorf("apt-get download %s: expected one .deb, found %d", pkg, len(m))
	}
	return m[0], nil
}

var availRe = regexp.MustCompile(`^linux-(?:binary|image)-([0-9][^ ]*)-` + flavourPattern() + `$`)

// available lists the kernel ABIs of the cloud kernel images for arch.
func (s *aptSession) available(ctx context.Context, arch Arch) ([]string, error) {
	out, err := s.run(ctx, "", "apt-cache", "search", "--names-only", `^linux-(binary|image)-[0-9].*-`+arch.Flavour()+`$`)
	if err != nil {
		return nil, err
	}
	return ParseAvailable(out, arch), nil
}

// ParseAvailable extracts the kernel ABI versions from "apt-cache search"
// output, sorted by version.
func ParseAvailable(out []byte, arch Arch) []string {
	seen := map[string]bool{}
	var vers []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " - ")
		m := availRe.FindStringSubmatch(strings.TrimSpace(name))
		if m == nil || m[2] != arch.Flavour() || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		vers = append(vers, m[1])
	}
	sort.Slice(vers, func(i, j int) bool { return versionLess(vers[i], vers[j]) })
	return vers
}

// versionLess orders "7.2.9+deb13" before "7.2.13+deb14" by comparing
// numeric runs as numbers.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		na, ra := numPrefix(a)
		nb, rb := numPrefix(b)
		if na >= 0 && nb >= 0 {
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func numPrefix(s string) (int, string) {
	i := 0
	n := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 9 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}

var (
	// Debian's riscv64 6.12 packages name their Image /boot/vmlinux-*.
	imageRe  = regexp.MustCompile(`^(?:usr/lib/modules/[^/]+/vmlinuz|boot/vmlinu[xz]-[^/]+)$`)
	configRe = regexp.MustCompile(`^(?:usr/lib/modules/[^/]+/config|boot/config-[^/]+)$`)
)

// extract unpacks the kernel image and config (when present) from a .deb
// into dir as "vmlinuz" and "config", each written atomically.
func extract(ctx context.Context, deb, dir string) (map[string]bool, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := map[string]bool{}
	tr := tar.NewReader(pipe)
	var terr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			terr = err
			break
		}
		name := strings.TrimPrefix(h.Name, "./")
		var dst string
		switch {
		case h.Typeflag != tar.TypeReg:
			continue
		case imageRe.MatchString(name):
			dst = "vmlinuz"
		case configRe.MatchString(name):
			dst = "config"
		default:
			continue
		}
		if err := writeAtomicFrom(filepath.Join(dir, dst), tr); err != nil {
			terr = err
			break
		}
		found[dst] = true
	}
	_, _ = io.Copy(io.Discard, pipe)
	werr := cmd.Wait()
	if terr != nil {
		return nil, fmt.Errorf("unpacking %s: %w", filepath.Base(deb), terr)
	}
	if werr != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", filepath.Base(deb), werr, stderr.String())
	}
	return found, nil
}

func writeAtomic(dst string, data []byte) error {
	return writeAtomicFrom(dst, bytes.NewReader(data))
}

func writeAtomicFrom(dst string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// lockFile takes an exclusive flock on path, creating it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func readAt(f *os.File, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// PackageSHA256 is the SHA256 the archive's index states for a build's
// image package (apt-cache show, the candidate version): what a CI
// cache of the kernel is keyed by, known before anything is downloaded.
func (f *Fetcher) PackageSHA256(ctx context.Context, b Build) (string, error) {
	sess, err := f.session(ctx)
	if err != nil {
		return "", err
	}
	spec := b.Package + ":" + b.Arch.Deb()
	if b.PkgVersion != "" {
		spec += "=" + b.PkgVersion
	}
	out, err := sess.run(ctx, "", "apt-cache", "show", "--no-all-versions", spec)
	if err != nil {
		return "", err
	}
	return ParseSHA256(out, b.Package)
}

// ParseSHA256 reads the first "SHA256:" field of apt-cache show output.
func ParseSHA256(show []byte, pkg string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(show))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SHA256: "); ok {
			v = strings.TrimSpace(v)
			if _, err := hex.DecodeString(v); err != nil || len(v) != 64 {
				return "", fmt.Errorf("apt-cache show %s: SHA256 %q is not 64 hex digits", pkg, v)
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("apt-cache show %s: no SHA256 field", pkg)
}
