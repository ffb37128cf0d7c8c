package bpfobs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/guestapi"
)

const sampleKallsyms = `ffffffff81000000 T _text
ffffffff814a1a10 T __bpf_tramp_enter
ffffffff814a1a60 T __bpf_tramp_exit
ffffffff83e7f890 T bpf_fentry_test1
ffffffff83e7f8b0 T bpf_fentry_test2
ffffffff83e80000 t bpf_modify_return_test
ffffffffc0000000 t helper_in_mod	[virtio_x]
ffffffff83e7f890 t bpf_fentry_test1
ffffffffc0000c40 t bpf_trampoline_6442516024	[bpf]
ffffffffc0000b08 t bpf_prog_4d09dfa577fbe765_fs_a	[bpf]
ffffffffc0000d00 t bpf_prog_59f4a931744dcdc6_trig	[bpf]
bogus line
ffffffffzz t bad_addr
`

func TestParseKallsymsLine(t *testing.T) {
	s, ok := parseKallsymsLine([]byte("ffffffffc0000c40 t bpf_trampoline_6442516024\t[bpf]"))
	if !ok || s.Addr != 0xffffffffc0000c40 || s.Type != "t" || s.Name != "bpf_trampoline_6442516024" || s.Module != "bpf" {
		t.Fatalf("%+v %v", s, ok)
	}
	s, ok = parseKallsymsLine([]byte("0000000000000000 A fixed_percpu_data"))
	if !ok || s.Addr != 0 || s.Type != "A" || s.Module != "" {
		t.Fatalf("%+v %v", s, ok)
	}
	for _, bad := range []string{"", "x", "ffff t", "ffff  t name", "zz t name", "ffff t \t[bpf]"} {
		if _, ok := parseKallsymsLine([]byte(bad)); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestReadNamed(t *testing.T) {
	m, err := readNamed(strings.NewReader(sampleKallsyms), []string{"__bpf_tramp_enter", "__bpf_tramp_exit", "missing", "helper_in_mod"}, []string{"bpf_fentry_test"})
	require.NoError(t, err)
	want := map[string]uint64{
		"__bpf_tramp_enter": 0xffffffff814a1a10, "__bpf_tramp_exit": 0xffffffff814a1a60,
		"bpf_fentry_test1": 0xffffffff83e7f890, "bpf_fentry_test2": 0xffffffff83e7f8b0,
	}
	if len(m) != len(want) {
		t.Errorf("got %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#x, want %#x", k, m[k], v)
		}
	}
}

func TestReadBPFSyms(t *testing.T) {
	syms, err := readBPFSyms(strings.NewReader(sampleKallsyms))
	require.NoError(t, err)
	if len(syms) != 3 || syms[0].Name != "bpf_prog_4d09dfa577fbe765_fs_a" || syms[1].Addr != 0xffffffffc0000c40 {
		t.Fatalf("%+v", syms)
	}
	n, ok := nextAfter(syms, 0xffffffffc0000c40)
	if !ok || n.Addr != 0xffffffffc0000d00 {
		t.Errorf("next %+v %v", n, ok)
	}
	if _, ok := nextAfter(syms, 0xffffffffc0000d00); ok {
		t.Error("next after last")
	}
	// No trailing newline, CRLF.
	syms, _ = readBPFSyms(strings.NewReader("ffffffffc0000c40 t a\t[bpf]\r\nffffffffc0000c80 t b\t[bpf]"))
	if len(syms) != 2 {
		t.Errorf("%+v", syms)
	}
}

func FuzzKallsyms(f *testing.F) {
	f.Add(sampleKallsyms)
	f.Add("ffffffffc0000c40 t bpf_trampoline_6442516024\t[bpf]\n")
	f.Add("0 A x\n\n\t[bpf]\n")
	f.Fuzz(func(t *testing.T, text string) {
		var n int
		if err := scanKallsyms(strings.NewReader(text), nil, func(s guestapi.Sym) {
			n++
			if s.Name == "" || len(s.Type) != 1 {
				t.Fatalf("bad sym %+v", s)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if n > strings.Count(text, "\n")+1 {
			t.Fatalf("%d symbols from %d lines", n, strings.Count(text, "\n")+1)
		}
		syms, _ := readBPFSyms(strings.NewReader(text))
		for i := 1; i < len(syms); i++ {
			if syms[i].Addr < syms[i-1].Addr {
				t.Fatal("unsorted")
			}
		}
		for _, s := range syms {
			if s.Module != "bpf" {
				t.Fatalf("non-bpf %+v", s)
			}
		}
		readNamed(strings.NewReader(text), []string{"a"}, []string{"b"})
	})
}
