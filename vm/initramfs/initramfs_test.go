package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hdr spells out a newc header the long way, for comparison with Writer.
func hdr(ino, mode, nlink, size, rmaj, rmin, namesize string) string {
	z := "00000000"
	return "070701" + ino + mode + z + z + nlink + z + size + z + z + rmaj + rmin + namesize + z
}

func TestTinyArchiveLayout(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.File("/d/f", 0o644, []byte("hi")); err != nil { // creates d first
		t.Fatal(err)
	}
	if err := w.CharDev("c", 0o600, 5, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "" +
		// "d\0": 110+2 = 112, already aligned.
		hdr("00000001", "000041ed", "00000002", "00000000", "00000000", "00000000", "00000002") + "d\x00" +
		// "d/f\0": 110+4 = 114, two bytes of padding; data "hi" padded to 4.
		hdr("00000002", "000081a4", "00000001", "00000002", "00000000", "00000000", "00000004") + "d/f\x00\x00\x00" + "hi\x00\x00" +
		// "c\0": 112; a device has rdev 5,1 and no data.
		hdr("00000003", "00002180", "00000001", "00000000", "00000005", "00000001", "00000002") + "c\x00" +
		// "TRAILER!!!\0": 110+11 = 121, three bytes of padding.
		hdr("00000000", "00000000", "00000001", "00000000", "00000000", "00000000", "0000000b") + "TRAILER!!!\x00\x00\x00\x00"
	if got := b.String(); got != want {
		t.Fatalf("archive differs\n got %q\nwant %q", got, want)
	}
	if len(want) != 112+120+112+124 {
		t.Fatalf("hand computation off: %d", len(want))
	}
	ents, err := Read(strings.NewReader(want))
	require.NoError(t, err)
	if len(ents) != 3 || ents[1].Name != "d/f" || string(ents[1].Data) != "hi" || ents[2].RDevMajor != 5 || ents[2].Mode&TypeMask != TypeChr {
		t.Fatalf("read back %+v", ents)
	}
}

func TestBuildRoundTrip(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "initrd.gz")
	init := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F', 1}, 1001)
	err := WriteFile(dst, init,
		File{Path: "/job.json", Data: []byte(`{"kind":"hello"}`)},
		File{Path: "/etc/tramp/x", Mode: 0o600, Data: []byte("abc")},
	)
	require.NoError(t, err)
	f, err := os.Open(dst)
	require.NoError(t, err)
	defer f.Close()
	ents, err := ReadGzip(f)
	require.NoError(t, err)
	var names []string
	byName := map[string]Entry{}
	for _, e := range ents {
		names = append(names, e.Name)
		byName[e.Name] = e
	}
	if got := strings.Join(names, " "); got != "dev dev/console proc sys init etc etc/tramp etc/tramp/x job.json" {
		t.Fatalf("names = %s", got)
	}
	if e := byName["init"]; e.Mode != TypeReg|0o755 || !bytes.Equal(e.Data, init) {
		t.Fatalf("init: mode %o, %d bytes", e.Mode, len(e.Data))
	}
	if e := byName["dev/console"]; e.Mode != TypeChr|0o600 || e.RDevMajor != 5 || e.RDevMinor != 1 {
		t.Fatalf("console: %+v", e)
	}
	if e := byName["etc/tramp/x"]; e.Mode != TypeReg|0o600 {
		t.Fatalf("x: mode %o", e.Mode)
	}
	if e := byName["job.json"]; e.Mode != TypeReg|0o644 {
		t.Fatalf("job: mode %o", e.Mode)
	}
}

func TestRejects(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	for _, n := range []string{"", "/", "TRAILER!!!", "/TRAILER!!!"} {
		if err := w.File(n, 0o644, nil); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	if _, err := Read(strings.NewReader("070702" + strings.Repeat("0", 104))); err == nil {
		t.Error("bad magic accepted")
	}
	if _, err := Read(strings.NewReader("")); err == nil {
		t.Error("missing trailer accepted")
	}
}
