package kernels

import (
	"fmt"
	"runtime"
	"strings"
)

// Arch is a guest architecture, spelled as tramp spells it on the command
// line: "x86_64", "arm64", "riscv64" or "s390x".
type Arch string

// The supported guest architectures.
const (
	X86_64  Arch = "x86_64"
	ARM64   Arch = "arm64"
	RISCV64 Arch = "riscv64"
	S390X   Arch = "s390x"
)

// Arches lists the supported architectures.
var Arches = []Arch{X86_64, ARM64, RISCV64, S390X}

// DefaultArches are the architectures a run covers when none is named:
// the two Debian builds a cloud flavour of.
var DefaultArches = []Arch{X86_64, ARM64}

// ParseArch accepts x86_64/amd64/x86, arm64/aarch64, riscv64 and s390x.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "x86_64", "amd64", "x86", "x86-64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	case "riscv64", "riscv":
		return RISCV64, nil
	case "s390x", "s390":
		return S390X, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64, arm64, riscv64 or s390x)", s)
}

// Deb is the Debian architecture name: amd64, arm64, riscv64 or s390x.
func (a Arch) Deb() string {
	if a == X86_64 {
		return "amd64"
	}
	return string(a)
}

// Flavour is the kernel flavour tramp boots on a: Debian's cloud flavour
// where Debian builds one (amd64, arm64), else the arch's only flavour,
// named after the arch (riscv64, s390x).
func (a Arch) Flavour() string {
	if a == X86_64 || a == ARM64 {
		return "cloud-" + a.Deb()
	}
	return a.Deb()
}

// flavourArch is the inverse of Flavour.
func flavourArch(flavour string) (Arch, bool) {
	for _, a := range Arches {
		if a.Flavour() == flavour {
			return a, true
		}
	}
	return "", false
}

// flavourPattern matches any of the flavours, for package-name patterns.
func flavourPattern() string {
	var f []string
	for _, a := range Arches {
		f = append(f, a.Flavour())
	}
	return "(" + strings.Join(f, "|") + ")"
}

// GOARCH is the Go architecture name.
func (a Arch) GOARCH() string { return a.Deb() }

// HostArch is the architecture tramp itself runs on, or "" if it is none
// of the supported architectures.
func HostArch() Arch {
	a, err := ParseArch(runtime.GOARCH)
	if err != nil {
		return ""
	}
	return a
}
