package kernels

import (
	"fmt"
	"strings"
)

// Profile names one Debian kernel build (the cloud flavour where there is
// one, see Arch.Flavour).
type Profile struct {
	Name string // e.g. "debian-7.2.13"
	// ABI is the Debian kernel ABI name without flavour, e.g. "7.2.13+deb14".
	ABI string
	// ImagePrefix is the name of the package holding the kernel image, up
	// to the ABI: "linux-binary-" or "linux-image-".
	ImagePrefix string
	// Fsession tells whether the kernel supports BPF fsession programs.
	Fsession bool
}

// Package is the package holding the kernel image for arch.
func (p Profile) Package(a Arch) string { return p.ImagePrefix + p.ABI + "-" + a.Flavour() }

// BasePackage is the package with config and System.map, where it exists.
func (p Profile) BasePackage(a Arch) string { return "linux-base-" + p.ABI + "-" + a.Flavour() }

var profiles = []Profile{
	{Name: "debian-7.2.13", ABI: "7.2.13+deb14", ImagePrefix: "linux-binary-", Fsession: true},
	{Name: "debian-7.3.4", ABI: "7.3.4+deb13", ImagePrefix: "linux-binary-", Fsession: true},
	{Name: "debian-6.18.15", ABI: "6.18.15+deb13", ImagePrefix: "linux-image-", Fsession: false},
}

// DefaultProfile is the profile used when none is named.
const DefaultProfile = "debian-7.2.13"

// Profiles returns the known profiles.
func Profiles() []Profile { return append([]Profile(nil), profiles...) }

// ProfileNames returns the names of the known profiles.
func ProfileNames() []string {
	var n []string
	for _, p := range profiles {
		n = append(n, p.Name)
	}
	return n
}

// LookupProfile finds a profile by name.
func LookupProfile(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown kernel profile %q (known: %s; or give a path to a kernel image)", name, strings.Join(ProfileNames(), ", "))
}
