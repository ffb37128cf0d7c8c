package kernels

import (
	"fmt"
	"runtime"
	"strings"
)

// Arch is a guest architecture, spelled as tramp spells it on the command
// line: "x86_64" or "arm64".
type Arch string

// The supported guest architectures.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// Arches lists the supported architectures.
var Arches = []Arch{X86_64, ARM64}

// ParseArch accepts x86_64/amd64/x86 and arm64/aarch64.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "x86_64", "amd64", "x86", "x86-64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", s)
}

// Deb is the Debian architecture name: amd64 or arm64.
func (a Arch) Deb() string {
	if a == X86_64 {
		return "amd64"
	}
	return string(a)
}

// GOARCH is the Go architecture name.
func (a Arch) GOARCH() string { return a.Deb() }

// HostArch is the architecture tramp itself runs on, or "" if it is neither
// supported architecture.
func HostArch() Arch {
	a, err := ParseArch(runtime.GOARCH)
	if err != nil {
		return ""
	}
	return a
}
