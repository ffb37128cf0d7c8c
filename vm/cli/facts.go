package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bpftramp/tramp/vm/facts"
	"github.com/bpftramp/tramp/vm/kernels"
)

// factsCmd is "tramp vm facts": every fact tramp reads from a kernel
// build, and where it read it, then the model profile they make.
func factsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("facts", "facts [--kernel K] [--arch x86_64,arm64] [--config FILE] [--json]", stderr)
	kflag := fs.String("kernel", kernels.DefaultProfile, "a served build (tramp vm kernels) or the path of a kernel image")
	aflag := fs.String("arch", "x86_64,arm64", "comma-separated architectures (for a path: its own)")
	cfg := fs.String("config", "", "build config of a kernel image given by path (default: found beside it)")
	asJSON := fs.Bool("json", false, "print JSON")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	arches, err := parseArches(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm facts: %v\n", err)
		return ExitUsage
	}
	if arches, err = archesOf(*kflag, arches); err != nil {
		fmt.Fprintf(stderr, "tramp vm facts: %v\n", err)
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	type out struct {
		Kernel  string       `json:"kernel"`
		Arch    kernels.Arch `json:"arch"`
		Image   string       `json:"image"`
		Config  string       `json:"config,omitempty"`
		Facts   []facts.Fact `json:"facts"`
		Profile any          `json:"profile"`
	}
	var all []out
	code := ExitOK
	for _, a := range arches {
		k, err := f.Resolve(ctx, *kflag, a)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm facts: %s %s: %v\n", *kflag, a, err)
			code = ExitCheck
			continue
		}
		config := k.Config
		if *cfg != "" {
			config = *cfg
		}
		kf, err := facts.Read(k.Path, config, a)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm facts: %s %s: %v\n", *kflag, a, err)
			code = ExitCheck
			continue
		}
		prof, err := kf.Profile(*kflag)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm facts: %s %s: %v\n", *kflag, a, err)
			code = ExitCheck
			continue
		}
		if *asJSON {
			all = append(all, out{Kernel: *kflag, Arch: a, Image: k.Path, Config: config, Facts: kf.Facts, Profile: prof})
			continue
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", *kflag, a, k.Path)
		if config == "" {
			fmt.Fprintf(stdout, "  no build config found: the config facts are assumed\n")
		} else {
			fmt.Fprintf(stdout, "  config %s\n", config)
		}
		fmt.Fprintf(stdout, "%s", indent(kf.Table(), "  "))
		fmt.Fprintf(stdout, "  (%s)\n\n", kf.Sources())
	}
	if *asJSON {
		b, _ := json.MarshalIndent(all, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return code
}

func indent(s, pre string) string {
	var b []byte
	start := true
	for i := 0; i < len(s); i++ {
		if start && s[i] != '\n' {
			b = append(b, pre...)
		}
		b = append(b, s[i])
		start = s[i] == '\n'
	}
	return string(b)
}
