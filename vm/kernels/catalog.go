package kernels

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// CatalogSuites are the suites the catalog lists, newest first: Debian's
// kernels for unstable, experimental, the stable backports, stable and
// testing.
var CatalogSuites = []string{"sid", "experimental", "trixie-backports", "trixie", "forky"}

// Build is one cloud kernel build the Debian archive serves for an arch.
type Build struct {
	// Name is how --kernel names it: "debian-<upstream version>" (the
	// named profiles keep theirs), with the ABI's +debNN suffix when
	// another build of the same version has a newer one.
	Name string `json:"name"`
	// Version is the upstream version ("7.2.13", "7.3-rc7").
	Version string `json:"version"`
	// ABI is the kernel ABI in the package name ("7.2.13+deb14").
	ABI  string `json:"abi"`
	Arch Arch   `json:"arch"`
	// Package holds the image: linux-binary-<ABI>-cloud-<arch> where
	// that exists (7.x), else linux-image-<ABI>-cloud-<arch>.
	Package    string `json:"package"`
	PkgVersion string `json:"package_version"`
	// Suites lists the suites serving this package version.
	Suites []string `json:"suites"`
}

// Profile is the fetch profile of a build.
func (b Build) Profile() Profile {
	prefix := "linux-image-"
	if strings.HasPrefix(b.Package, "linux-binary-") {
		prefix = "linux-binary-"
	}
	return Profile{Name: b.Name, ABI: b.ABI, ImagePrefix: prefix}
}

var catalogNameRe = regexp.MustCompile(`^linux-(binary|image)-([0-9][^-\s]*)-` + flavourPattern() + `$`)

// madisonRe matches a line of apt-cache madison: "pkg | version | uri
// suite/component arch Packages".
var madisonRe = regexp.MustCompile(`^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*\S+\s+([^/\s]+)/\S+\s+(\S+)\s+Packages\s*$`)

// ParseCatalog turns "apt-cache madison" output for the cloud kernel
// packages into builds, one per (ABI, arch), sorted by version then arch.
func ParseCatalog(madison []byte) []Build {
	type key struct {
		abi  string
		arch Arch
	}
	type pkgs struct {
		binary, image *Build
	}
	found := map[key]*pkgs{}
	sc := bufio.NewScanner(bytes.NewReader(madison))
	for sc.Scan() {
		m := madisonRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name, _, _ := strings.Cut(m[1], ":")
		n := catalogNameRe.FindStringSubmatch(name)
		if n == nil {
			continue
		}
		arch, ok := flavourArch(n[3])
		if !ok || arch.Deb() != m[4] {
			continue
		}
		k := key{n[2], arch}
		p := found[k]
		if p == nil {
			p = &pkgs{}
			found[k] = p
		}
		slot := &p.image
		if n[1] == "binary" {
			slot = &p.binary
		}
		if *slot == nil {
			*slot = &Build{ABI: n[2], Arch: arch, Package: name, PkgVersion: m[2], Version: upstreamVersion(m[2])}
		}
		b := *slot
		if b.PkgVersion == m[2] && !slices.Contains(b.Suites, m[3]) {
			b.Suites = append(b.Suites, m[3])
		}
	}
	var out []Build
	for _, p := range found {
		b := p.binary
		if b == nil {
			b = p.image
		}
		out = append(out, *b)
	}
	nameBuilds(out)
	sort.Slice(out, func(i, j int) bool {
		if out[i].ABI != out[j].ABI {
			return versionLess(out[i].ABI, out[j].ABI)
		}
		return out[i].Arch < out[j].Arch
	})
	return out
}

// upstreamVersion is the Debian version's upstream part: "7.2.13-1" is
// 7.2.13, "7.3~rc7-1~exp1" is 7.3-rc7, "7.3.4-1~bpo13+1" is 7.3.4.
func upstreamVersion(debVersion string) string {
	v := debVersion
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return strings.Replace(v, "~rc", "-rc", 1)
}

// nameBuilds gives each build its --kernel name: a named profile's ABI
// keeps the profile's name; otherwise "debian-<version>" goes to the
// newest ABI of that version and the others carry their +debNN.
func nameBuilds(bs []Build) {
	newest := map[string]string{} // version/arch -> newest ABI
	for _, b := range bs {
		k := b.Version + "/" + string(b.Arch)
		if cur, ok := newest[k]; !ok || versionLess(cur, b.ABI) {
			newest[k] = b.ABI
		}
	}
	for i := range bs {
		b := &bs[i]
		for _, p := range profiles {
			if p.ABI == b.ABI {
				b.Name = p.Name
			}
		}
		if b.Name != "" {
			continue
		}
		b.Name = "debian-" + b.Version
		if newest[b.Version+"/"+string(b.Arch)] != b.ABI {
			if _, suffix, ok := strings.Cut(b.ABI, "+"); ok {
				b.Name += "+" + suffix
			}
		}
	}
}

// Catalog lists every cloud kernel build the archive serves for the
// arches, through the machine's apt (signature-checked indexes of
// CatalogSuites).
func (f *Fetcher) Catalog(ctx context.Context, arches []Arch) ([]Build, error) {
	f.mu.Lock()
	cached := f.catalog
	f.mu.Unlock()
	if cached == nil {
		sess, err := f.session(ctx)
		if err != nil {
			return nil, err
		}
		out, err := sess.run(ctx, "", "apt-cache", "search", "--names-only", `^linux-(binary|image)-[0-9].*-`+flavourPattern()+`$`)
		if err != nil {
			return nil, err
		}
		var names []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), " - ")
			name = strings.TrimSpace(name)
			if n := catalogNameRe.FindStringSubmatch(name); n != nil {
				a, _ := flavourArch(n[3])
				names = append(names, name+":"+a.Deb())
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("the archive lists no cloud kernels in suites %s", strings.Join(CatalogSuites, ", "))
		}
		mad, err := sess.run(ctx, "", "apt-cache", append([]string{"madison"}, names...)...)
		if err != nil {
			return nil, err
		}
		cached = ParseCatalog(mad)
		f.mu.Lock()
		f.catalog = cached
		f.mu.Unlock()
	}
	var bs []Build
	for _, b := range cached {
		if slices.Contains(arches, b.Arch) {
			bs = append(bs, b)
		}
	}
	return bs, nil
}

// IsBuildName says whether s is spelled like a catalog name or pattern
// ("debian-..."), as opposed to a path.
func IsBuildName(s string) bool {
	return strings.HasPrefix(s, "debian-") && !strings.ContainsRune(s, '/')
}

// Select picks builds by --kernel words: "all", exact names, and
// path.Match globs ("debian-7.2.*"). Every word must match a build of at
// least one of the catalog's arches; the result keeps catalog order and
// has no duplicates.
func Select(catalog []Build, words []string) ([]Build, error) {
	var out []Build
	seen := map[string]bool{}
	for _, w := range words {
		n := 0
		for _, b := range catalog {
			ok := w == "all" || b.Name == w
			if !ok && strings.ContainsAny(w, "*?[") {
				ok, _ = path.Match(w, b.Name)
			}
			if !ok {
				continue
			}
			n++
			if k := b.Name + "/" + string(b.Arch); !seen[k] {
				seen[k] = true
				out = append(out, b)
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("no served build matches %q (tramp vm kernels lists them: %s)", w, nearNames(catalog, w))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return versionLess(out[i].ABI, out[j].ABI) })
	return out, nil
}

// nearNames lists the names sharing the longest prefix with w.
func nearNames(catalog []Build, w string) string {
	best, bestLen := []string{}, -1
	for _, b := range catalog {
		l := 0
		for l < len(w) && l < len(b.Name) && w[l] == b.Name[l] {
			l++
		}
		switch {
		case l > bestLen:
			best, bestLen = []string{b.Name}, l
		case l == bestLen && !slices.Contains(best, b.Name):
			best = append(best, b.Name)
		}
	}
	if len(best) > 8 {
		best = append(best[:8], "...")
	}
	return strings.Join(best, ", ")
}
