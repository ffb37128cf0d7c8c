package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/bpftramp/tramp/vm/kernels"
)

// buildCmd is "tramp vm build": compile a rebuild (kernels.Rebuilds) from
// its base build's Debian source package and config into the cache, where
// every other command then finds it by name.
func buildCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("build", "build --kernel debian-7.2.13+z196 [--arch s390x] [--jobs N]", stderr)
	kflag := fs.String("kernel", "", "the rebuild to compile (one of: "+rebuildNames()+")")
	aflag := fs.String("arch", "", "its architecture (default: the one arch the rebuild exists for)")
	jobs := fs.Int("jobs", runtime.NumCPU(), "make -j")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if *aflag == "" {
		for _, r := range kernels.Rebuilds {
			if r.Name == *kflag {
				*aflag = string(r.Arch)
				break
			}
		}
		if *aflag == "" {
			fmt.Fprintf(stderr, "tramp vm build: no rebuild %q (known: %s)\n", *kflag, rebuildNames())
			return ExitUsage
		}
	}
	arch, err := kernels.ParseArch(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm build: %v\n", err)
		return ExitUsage
	}
	r, ok := kernels.LookupRebuild(*kflag, arch)
	if !ok {
		fmt.Fprintf(stderr, "tramp vm build: no rebuild %q for %s (known: %s)\n", *kflag, arch, rebuildNames())
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	k, err := f.Rebuild(ctx, r, *jobs)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm build: %v\n", err)
		return ExitCheck
	}
	fmt.Fprintf(stdout, "%s %s: %s\n  built from %s (%s %s), %d bytes, sha256 %s\n  config %s\n", r.Name, arch, k.Path, r.Base, k.Package, k.Version, k.Size, k.SHA256, k.Config)
	return ExitOK
}

func rebuildNames() string {
	s := ""
	for i, r := range kernels.Rebuilds {
		if i > 0 {
			s += ", "
		}
		s += r.Name + " (" + string(r.Arch) + ")"
	}
	return s
}
