package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/bpftramp/tramp/vm/kernels"
)

// kernelsCmd is "tramp vm kernels": every cloud kernel build the Debian
// archive serves (CatalogSuites), per arch, and whether it is cached.
func kernelsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("kernels", "kernels [--arch x86_64,arm64] [--kernel all|NAME|GLOB,...] [--json]", stderr)
	aflag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	kflag := fs.String("kernel", "all", "builds to list: all, names, or globs such as debian-7.2.*")
	asJSON := fs.Bool("json", false, "print JSON")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	arches, err := parseArches(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm kernels: %v\n", err)
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	cat, err := f.Catalog(ctx, arches)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm kernels: %v\n", err)
		return ExitCheck
	}
	sel, err := kernels.Select(cat, splitList(*kflag))
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm kernels: %v\n", err)
		return ExitUsage
	}
	type row struct {
		kernels.Build
		Cached bool `json:"cached"`
		// Rebuild says why a rebuild (tramp vm build) exists; it is in
		// no suite.
		Rebuild string `json:"rebuild,omitempty"`
	}
	rows := make([]row, 0, len(sel))
	for _, b := range sel {
		_, cerr := f.Cached(b.Name, b.Arch)
		rows = append(rows, row{Build: b, Cached: cerr == nil})
	}
	for _, r := range kernels.Rebuilds {
		if !slices.Contains(arches, r.Arch) || !(*kflag == "all" || matchesAny(r.Name, splitList(*kflag))) {
			continue
		}
		b := kernels.Build{Name: r.Name, Arch: r.Arch, Package: "tramp vm build"}
		for _, c := range cat {
			if c.Name == r.Base && c.Arch == r.Arch {
				b.Version, b.ABI, b.PkgVersion = c.Version, c.ABI, c.PkgVersion
			}
		}
		_, cerr := f.Cached(r.Name, r.Arch)
		rows = append(rows, row{Build: b, Cached: cerr == nil, Rebuild: r.Why})
	}
	if *asJSON {
		out, _ := json.MarshalIndent(rows, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return ExitOK
	}
	fmt.Fprintf(stdout, "%-22s %-7s %-10s %-42s %-18s %s\n", "kernel", "arch", "version", "package", "suite", "cached")
	for _, r := range rows {
		c := "-"
		if r.Cached {
			c = "yes"
		}
		suites := strings.Join(r.Suites, ",")
		if r.Rebuild != "" {
			suites = "(rebuild)"
		}
		fmt.Fprintf(stdout, "%-22s %-7s %-10s %-42s %-18s %s\n", r.Name, r.Arch, r.Version, r.Package, suites, c)
	}
	fmt.Fprintf(stdout, "%d builds; fetch any with tramp vm fetch --kernel NAME (a rebuild: tramp vm build --kernel NAME), run the corpus with tramp vm check --kernel NAME\n", len(rows))
	return ExitOK
}

// expandKernels turns --kernel words into kernel names and paths: a
// named profile or an image path stays as it is; "all", a glob or any
// other debian-<version> is looked up in the catalog of served builds
// for the arches (which needs the archive only then).
func expandKernels(ctx context.Context, f *kernels.Fetcher, spec string, arches []kernels.Arch) ([]string, error) {
	names, _, err := expandKernelsServed(ctx, f, spec, arches)
	return names, err
}

// expandKernelsServed is expandKernels that also says, for each name it
// took from the catalog, the arches of arches that serve it (riscv64 and
// s390x have fewer builds than x86_64 and arm64); a name it did not look
// up there has no entry.
func expandKernelsServed(ctx context.Context, f *kernels.Fetcher, spec string, arches []kernels.Arch) ([]string, map[string][]kernels.Arch, error) {
	served := map[string][]kernels.Arch{}
	var out []string
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	var cat []kernels.Build
	for _, w := range splitList(spec) {
		if _, err := kernels.LookupProfile(w); err == nil || !(w == "all" || kernels.IsBuildName(w)) {
			add(w) // a named profile, or a path (checked where it is opened)
			continue
		}
		if kernels.IsRebuildName(w) || !strings.ContainsAny(w, "*?[") && w != "all" && cachedAll(f, w, arches) {
			add(w) // no need to ask the archive (a rebuild is not in it: tramp vm build makes it)
			continue
		}
		if cat == nil {
			var err error
			if cat, err = f.Catalog(ctx, arches); err != nil {
				return nil, nil, fmt.Errorf("--kernel %s: listing the served builds: %w", w, err)
			}
		}
		bs, err := kernels.Select(cat, []string{w})
		if err != nil {
			return nil, nil, err
		}
		for _, b := range bs {
			add(b.Name)
			if !slices.Contains(served[b.Name], b.Arch) {
				served[b.Name] = append(served[b.Name], b.Arch)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("--kernel names no kernel")
	}
	return out, served, nil
}

func cachedAll(f *kernels.Fetcher, name string, arches []kernels.Arch) bool {
	for _, a := range arches {
		if _, err := f.Cached(name, a); err != nil {
			return false
		}
	}
	return true
}

// archesOf is the arches a --kernel value runs on: the requested ones for
// a profile or served build, the image's own for a path.
func archesOf(k string, arches []kernels.Arch) ([]kernels.Arch, error) {
	if _, err := kernels.LookupProfile(k); err == nil || kernels.IsBuildName(k) {
		return arches, nil
	}
	if _, err := os.Stat(k); err != nil {
		return nil, fmt.Errorf("--kernel %q is neither a served build (tramp vm kernels) nor a file", k)
	}
	a, err := kernels.DetectArch(k)
	if err != nil {
		return nil, fmt.Errorf("--kernel %q: %w", k, err)
	}
	return []kernels.Arch{a}, nil
}
