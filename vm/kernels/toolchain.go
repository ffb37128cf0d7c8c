package kernels

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A toolchain is a Debian suite's compilers, unpacked by debootstrap into
// a directory of the cache and entered with chroot: the compilers Debian
// built a release with, where the host's are too old for its config
// (riscv64's DYNAMIC_FTRACE wants gcc 14's -fmin-function-alignment with
// compressed instructions, and bookworm has gcc 12).
type toolchain struct {
	suite string
	root  string
}

// toolchainPackages are what a kernel rebuild runs inside the chroot:
// kernels.RebuildTools' commands and headers, with the cross compilers of
// every arch tramp rebuilds.
var toolchainPackages = []string{
	"make", "gcc", "libc6-dev", "flex", "bison", "bc", "libelf-dev", "libssl-dev", "dwarves",
	"xz-utils", "zstd", "python3", "cpio", "kmod", "openssl",
	"gcc-riscv64-linux-gnu", "binutils-riscv64-linux-gnu",
	"gcc-s390x-linux-gnu", "binutils-s390x-linux-gnu",
}

// toolchainReady is the file a finished toolchain holds: the packages it
// was made with, one per line.
const toolchainReady = ".tramp-toolchain"

// toolchain returns suite's toolchain, making it on first use (debootstrap
// from the Debian mirror the machine's apt uses; a few minutes). It needs
// root, as debootstrap and chroot do.
func (f *Fetcher) toolchain(ctx context.Context, suite string) (*toolchain, error) {
	root, err := f.cacheRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "toolchains", suite)
	tc := &toolchain{suite: suite, root: dir}
	want := strings.Join(toolchainPackages, "\n") + "\n"
	if have, err := os.ReadFile(filepath.Join(dir, toolchainReady)); err == nil && string(have) == want {
		return tc, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the %s toolchain (debootstrap into %s, then chroot) needs root", suite, dir)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return nil, fmt.Errorf("the %s toolchain needs debootstrap (apt-get install debootstrap)", suite)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if have, err := os.ReadFile(filepath.Join(dir, toolchainReady)); err == nil && string(have) == want {
		return tc, nil // made by another process meanwhile
	}
	logPath := dir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	run := func(cmd *exec.Cmd) error {
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			tail, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, lastLines(string(tail), 10))
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, toolchainReady)); err == nil {
		// Made before with fewer packages: the rest installed by its apt.
		f.logf("installing %s's packages into %s (log: %s)", suite, dir, logPath)
		if err := run(tc.command(ctx, "/", "apt-get", "-q", "update")); err != nil {
			return nil, err
		}
		if err := run(tc.command(ctx, "/", "apt-get", append([]string{"-q", "-y", "--no-install-recommends", "install"}, toolchainPackages...)...)); err != nil {
			return nil, err
		}
	} else {
		uri, _, err := f.debianMirror()
		if err != nil {
			return nil, err
		}
		// A half-made directory from a run that died is made again.
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		f.logf("debootstrap %s into %s (log: %s)", suite, dir, logPath)
		if err := run(exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(toolchainPackages, ","), suite, dir, uri)); err != nil {
			return nil, err
		}
	}
	if err := writeAtomic(filepath.Join(dir, toolchainReady), []byte(want)); err != nil {
		return nil, err
	}
	return tc, nil
}

// command runs name with args inside the chroot, in dir (a path inside
// it), with a clean environment.
func (tc *toolchain) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	inner := append([]string{tc.root, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8",
		"/bin/sh", "-c", `cd "$0" && exec "$@"`, dir, name}, args...)
	return exec.CommandContext(ctx, "chroot", inner...)
}
