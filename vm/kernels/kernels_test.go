package kernels

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPickDebian(t *testing.T) {
	cases := []struct {
		dir, uri, signedBy, err string
	}{
		{"deb822", "http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg", ""},
		{"oneline", "http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg", ""},
		{"inline", "https://mirror.example/debian", "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPLACEHOLDERKEYDATAnotarealkey\n -----END PGP PUBLIC KEY BLOCK-----", ""},
		{"nosig", "http://mirror.example/debian", "", ""},
		{"none", "", "", "no Debian archive entry"},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			srcs, err := LoadSources(filepath.Join("testdata", "apt", c.dir))
			require.NoError(t, err)
			uri, sb, err := PickDebian(srcs)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			require.NoError(t, err)
			if uri != c.uri || sb != c.signedBy {
				t.Fatalf("got %q %q, want %q %q", uri, sb, c.uri, c.signedBy)
			}
		})
	}
}

func TestParseDeb822Fields(t *testing.T) {
	srcs, err := ParseDeb822([]byte("Types: deb deb-src\nURIs: http://a.example/debian http://b.example/debian\nSuites: x y\nComponents: main\nEnabled: no\n\n\nTypes: deb\nURIs: u\nSuites: s\n"))
	require.NoError(t, err)
	want := []Source{
		{Types: []string{"deb", "deb-src"}, URIs: []string{"http://a.example/debian", "http://b.example/debian"}, Suites: []string{"x", "y"}, Components: []string{"main"}, Enabled: false},
		{Types: []string{"deb"}, URIs: []string{"u"}, Suites: []string{"s"}, Components: []string{}, Enabled: true},
	}
	if !reflect.DeepEqual(srcs, want) {
		t.Fatalf("got %+v", srcs)
	}
	if _, err := ParseDeb822([]byte(" orphan continuation\n")); err == nil {
		t.Error("orphan continuation accepted")
	}
	if _, err := ParseOneLine([]byte("deb [signed-by=x http://a sid main\n")); err == nil {
		t.Error("unterminated options accepted")
	}
}

func TestRenderSources(t *testing.T) {
	got := string(RenderSources("http://mirror.example/debian", "/k.gpg", CatalogSuites))
	want := "Types: deb\nURIs: http://mirror.example/debian\nSuites: sid experimental trixie-backports trixie forky\nComponents: main\nSigned-By: /k.gpg\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// An inline key survives a render/parse round trip.
	srcs, _ := LoadSources(filepath.Join("testdata", "apt", "inline"))
	_, sb, _ := PickDebian(srcs)
	back, err := ParseDeb822(RenderSources("u", sb, []string{"sid"}))
	if err != nil || len(back) != 1 || back[0].SignedBy != sb {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestParseAvailable(t *testing.T) {
	out := []byte(`linux-binary-7.2.9+deb13-cloud-amd64 - Linux 7.2.9 for x86-64 cloud (kernel image)
linux-binary-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 for x86-64 cloud (kernel image)
linux-image-7.2.13+deb14-cloud-amd64 - Linux 7.2.13 for x86-64 cloud
linux-image-7.2.13+deb14-cloud-amd64-dbg - debug symbols
linux-binary-unsigned-7.3.4+deb13-cloud-amd64 - unsigned
linux-image-6.18.15+deb13-cloud-amd64 - Linux 6.18.15 for x86-64 cloud (signed)
linux-binary-7.2.13+deb14-cloud-arm64 - Linux 7.2.13 for arm64 cloud (kernel image)
`)
	got := ParseAvailable(out, X86_64)
	want := []string{"6.18.15+deb13", "7.2.9+deb13", "7.2.13+deb14"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := ParseAvailable(out, ARM64); !reflect.DeepEqual(got, []string{"7.2.13+deb14"}) {
		t.Fatalf("arm64: %v", got)
	}
}

func TestUnavailableMessage(t *testing.T) {
	e := &UnavailableError{Profile: "debian-7.2.13", Package: "linux-binary-7.2.13+deb14-cloud-arm64", Arch: ARM64, Available: []string{"7.2.14+deb14", "7.3.4+deb13"}}
	msg := e.Error()
	for _, s := range []string{"debian-7.2.13", "linux-binary-7.2.13+deb14-cloud-arm64", "not available", "7.2.14+deb14, 7.3.4+deb13", "--kernel"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q: %s", s, msg)
		}
	}
}

func TestProfilesAndArch(t *testing.T) {
	p, err := LookupProfile("debian-7.3.4")
	require.NoError(t, err)
	if got := p.Package(ARM64); got != "linux-binary-7.3.4+deb13-cloud-arm64" {
		t.Fatal(got)
	}
	p, _ = LookupProfile("debian-6.18.15")
	if got := p.Package(X86_64); got != "linux-image-6.18.15+deb13-cloud-amd64" {
		t.Fatal(got)
	}
	if _, err := LookupProfile("debian-1.0"); err == nil || !strings.Contains(err.Error(), "debian-7.2.13") {
		t.Fatalf("err = %v", err)
	}
	for in, want := range map[string]Arch{"amd64": X86_64, "x86_64": X86_64, "aarch64": ARM64, "arm64": ARM64, "riscv64": RISCV64, "s390x": S390X} {
		if got, err := ParseArch(in); err != nil || got != want {
			t.Errorf("ParseArch(%q) = %v %v", in, got, err)
		}
	}
	if _, err := ParseArch("mips64"); err == nil {
		t.Error("mips64 accepted")
	}
	if got := (Profile{ABI: "7.2.13+deb14", ImagePrefix: "linux-binary-"}).Package(RISCV64); got != "linux-binary-7.2.13+deb14-riscv64" {
		t.Error(got)
	}
}

func TestDetectArchAndFromFile(t *testing.T) {
	dir := t.TempDir()
	x86 := make([]byte, 0x400)
	copy(x86[0x202:], "HdrS")
	arm := make([]byte, 0x400)
	copy(arm[0x38:], "ARM\x64")
	os.WriteFile(filepath.Join(dir, "bz"), x86, 0o644)
	os.WriteFile(filepath.Join(dir, "Image"), arm, 0o644)
	os.WriteFile(filepath.Join(dir, "junk"), []byte("hello"), 0o644)
	if k, err := FromFile(filepath.Join(dir, "bz"), X86_64); err != nil || k.Size != 0x400 || len(k.SHA256) != 64 {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := FromFile(filepath.Join(dir, "Image"), X86_64); err == nil || !strings.Contains(err.Error(), "arm64 image") {
		t.Fatalf("err = %v", err)
	}
	if _, err := FromFile(filepath.Join(dir, "junk"), ARM64); err == nil {
		t.Fatal("junk accepted")
	}
	f := &Fetcher{CacheDir: dir, Offline: true}
	k, err := f.Resolve(context.Background(), filepath.Join(dir, "Image"), ARM64)
	if err != nil || k.Path != filepath.Join(dir, "Image") {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := f.Resolve(context.Background(), "debian-7.2.13", ARM64); err == nil || !strings.Contains(err.Error(), "tramp vm fetch") {
		t.Fatalf("offline miss: %v", err)
	}
	if _, err := f.Cached("debian-7.2.13", ARM64); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Cached: %v", err)
	}
}

// TestFetchUnavailableLive asks the real mirror for a kernel that does not
// exist. It needs the network, so it runs with TRAMP_VM=1 only.
func TestFetchUnavailableLive(t *testing.T) {
	if os.Getenv("TRAMP_VM") != "1" {
		t.Skip("set TRAMP_VM=1 to run tests that use the Debian mirror")
	}
	f := &Fetcher{CacheDir: t.TempDir()}
	defer f.Close()
	_, err := f.get(context.Background(), Profile{Name: "debian-0.0.1", ABI: "0.0.1+deb99", ImagePrefix: "linux-binary-"}, ARM64)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnavailableError", err)
	}
	if len(ue.Available) == 0 {
		t.Fatalf("no available kernels listed: %v", err)
	}
	t.Logf("%v", err)
}

func TestParseSHA256(t *testing.T) {
	show := []byte("Package: linux-binary-7.2.13+deb14-riscv64\nVersion: 7.2.13-1\nSize: 9937196\nSHA256: 3b5d5c3712955042212316173ccf37be800d0b5e1f4c2b2d9a6c5ea1c0f7e2a1\n\n")
	got, err := ParseSHA256(show, "p")
	if err != nil || got != "3b5d5c3712955042212316173ccf37be800d0b5e1f4c2b2d9a6c5ea1c0f7e2a1" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{"Package: x\n", "SHA256: zz\n", "SHA256: abcd\n"} {
		if _, err := ParseSHA256([]byte(bad), "p"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
