//go:build linux

package bpfobs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
)

func ty(s string) trampoline.Type {
	t, err := trampoline.ParseType(s, true)
	if err != nil {
		panic(err)
	}
	return t
}

func proto(ret string, args ...string) trampoline.Prototype {
	p := trampoline.Prototype{Ret: ty(ret)}
	for _, a := range args {
		p.Args = append(p.Args, ty(a))
	}
	return p
}

func TestClassifyShape(t *testing.T) {
	for _, tc := range []struct {
		p         trampoline.Prototype
		x86, arm  string
		rv        string // riscv64, where it differs from arm64
		wantError bool
	}{
		{p: proto("void"), x86: "a0-plain-reg-void", arm: "a0-plain-reg-void"},
		{p: proto("s32", "u64", "ptr"), x86: "a2-plain-reg-ret", arm: "a2-plain-reg-ret"},
		{p: proto("ptr", "u8", "u16", "u32", "u64", "ptr", "s32"), x86: "a6-plain-reg-ret", arm: "a6-plain-reg-ret"},
		// Seven words: the seventh is on the stack on x86 only.
		{p: proto("void", "u64", "u64", "u64", "u64", "u64", "u64", "u64"), x86: "a7-plain-stack-void", arm: "a7-plain-reg-void"},
		{p: proto("void", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64"), x86: "a9-plain-stack-void", arm: "a9-plain-stack-void"},
		{p: proto("u64", "struct4", "ptr"), x86: "a2-struct8-reg-ret", arm: "a2-struct8-reg-ret"},
		{p: proto("u64", "struct8", "struct16"), x86: "a2-struct16-reg-ret", arm: "a2-struct16-reg-ret"},
		// A 16-byte struct with one register left: memory on x86, and on
		// arm64 too (it does not fit in x7 alone).
		{p: proto("void", "u64", "u64", "u64", "u64", "u64", "struct16"), x86: "a6-struct16-stack-void", arm: "a6-struct16-reg-void"},
		{p: proto("void", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "struct16"), x86: "a8-struct16-stack-void", arm: "a8-struct16-stack-void"},
		// arm64 starts a 16-byte integer at an even register: x1 is
		// skipped and u128 takes x2/x3 ... the last one spills.
		{p: proto("void", "u64", "u128", "u64", "u64", "u64", "u64"), x86: "a6-int128-stack-void", arm: "a6-int128-reg-void"},
		// riscv64 LP64 aligns no pair for a named argument: x1 is not
		// skipped, and u128 in a1/a2 leaves room for five more.
		{p: proto("void", "u64", "u128", "u64", "u64", "u64", "u64", "u64"), x86: "a7-int128-stack-void", arm: "a7-int128-stack-void", rv: "a7-int128-reg-void"},
		{p: proto("void", "u64", "u128", "u64", "u64", "u64", "u64", "u64", "u64"), x86: "a8-int128-stack-void", arm: "a8-int128-stack-void"},
		{p: proto("u128", "u64"), x86: "a1-plain-reg-ret16", arm: "a1-plain-reg-ret16"},
		{p: proto("struct8", "u64"), x86: "a1-plain-reg-retstruct", arm: "a1-plain-reg-retstruct"},
		{p: proto("void", "struct24"), wantError: true},
		{p: proto("void", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8", "u8"), wantError: true},
	} {
		rv := tc.rv
		if rv == "" {
			rv = tc.arm
		}
		for _, arch := range []string{"x86_64", "arm64", "riscv64"} {
			want := map[string]string{"x86_64": tc.x86, "arm64": tc.arm, "riscv64": rv}[arch]
			b, err := ClassifyShape(tc.p, arch)
			if tc.wantError {
				if err == nil {
					t.Errorf("%s %s: bucket %s, want an error", arch, tc.p, b)
				}
				continue
			}
			if err != nil || b.String() != want {
				t.Errorf("%s %s: %s, %v; want %s", arch, tc.p, b, err, want)
			}
		}
	}
	// s390x: five argument registers, anything wider than 8 bytes by
	// reference, so the sixth argument is the first on the stack.
	for _, tc := range []struct {
		p    trampoline.Prototype
		want string
	}{
		{proto("s32", "u64", "ptr"), "a2-plain-reg-ret"},
		{proto("void", "u64", "u64", "u64", "u64", "u64"), "a5-plain-reg-void"},
		{proto("ptr", "u8", "u16", "u32", "u64", "ptr", "s32"), "a6-plain-stack-ret"},
		{proto("u64", "struct8", "struct16"), "a2-struct16-reg-ret"},
		{proto("void", "u64", "u128", "u64", "u64", "u64"), "a5-int128-reg-void"},
		{proto("void", "u64", "u64", "u64", "u64", "u64", "struct16"), "a6-struct16-stack-void"},
	} {
		b, err := ClassifyShape(tc.p, "s390x")
		if err != nil || b.String() != tc.want {
			t.Errorf("s390x %s: %s, %v; want %s", tc.p, b, err, tc.want)
		}
	}
	if _, err := ClassifyShape(proto("void"), "ppc64le"); err == nil {
		t.Error("ppc64le: no error")
	}
}

func TestShapeDenied(t *testing.T) {
	deny := []string{
		"__bpf_prog_enter", "bpf_trampoline_update", "migrate_disable", "rcu_read_unlock_special",
		"preempt_schedule", "_raw_spin_lock", "mutex_lock", "do_IRQ", "handle_irq_event", "schedule",
		"__schedule", "sched_clock", "_printk", "vprintk_emit", "ftrace_ops_list_func",
		"perf_event_task_tick", "kprobe_ftrace_handler", "do_exit", "do_group_exit", "panic",
		"__x64_sys_read", "__arm64_sys_write", "__se_sys_open", "exc_page_fault", "do_el0_svc",
		"kmalloc_trace", "kfree", "text_poke_bp", "smp_call_function_many", "stop_machine",
		"kthread_exit", "__stack_chk_fail", "arch_cpu_idle", "native_write_cr4", "up", "down",
	}
	for _, f := range deny {
		if !ShapeDenied(f) {
			t.Errorf("%s is not denied", f)
		}
	}
	allow := []string{
		"security_file_open", "get_next_ino", "devlink_ports_notify_register", "cnum64_umin",
		"gnet_stats_finish_copy", "inet_csk_get_port", "ipv6_addr_type", "nla_put", "kstrtoint",
	}
	for _, f := range allow {
		if ShapeDenied(f) {
			t.Errorf("%s is denied", f)
		}
	}
}

func TestPickShapes(t *testing.T) {
	b1 := ShapeBucket{Args: 1, Ret: "ret"}
	b2 := ShapeBucket{Args: 2, Wide: "struct16", Ret: "void"}
	var cands []ShapeCandidate
	for _, n := range []string{"f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"} {
		cands = append(cands, ShapeCandidate{Name: n, Bucket: b1})
	}
	cands = append(cands, ShapeCandidate{Name: "security_thing", Bucket: b1})
	cands = append(cands, ShapeCandidate{Name: "g1", Bucket: b2}, ShapeCandidate{Name: "g2", Bucket: b2, ErrorInject: true})
	names := func(cs []ShapeCandidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	a := names(PickShapes(append([]ShapeCandidate(nil), cands...), 3, 7))
	// The same set in another order picks the same functions.
	rev := append([]ShapeCandidate(nil), cands...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	b := names(PickShapes(rev, 3, 7))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("order-dependent choice: %v vs %v", a, b)
	}
	if len(a) != 5 {
		t.Fatalf("picked %v, want 3 of bucket a1 and both of a2", a)
	}
	// Buckets in name order, the modifiable candidate first in each.
	if a[0] != "security_thing" || a[3] != "g2" || a[4] != "g1" {
		t.Errorf("picked %v: want security_thing first in a1 and g2 first in a2", a)
	}
	if n := len(PickShapes(cands, 0, 7)); n != 2 {
		t.Errorf("perBucket 0 picked %d, want one per bucket", n)
	}
	// Another seed may pick other functions, but always as many.
	if n := len(PickShapes(cands, 3, 8)); n != 5 {
		t.Errorf("seed 8 picked %d", n)
	}
}

func TestParseFilterFunctions(t *testing.T) {
	src := "get_next_ino\nfoo\nfoo\nvirtnet_probe [virtio_net]\n\nbar\t\n"
	m, err := parseFilterFunctions(strings.NewReader(src), false)
	require.NoError(t, err)
	want := map[string]int{"get_next_ino": 1, "foo": 2, "bar": 1}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %v, want %v", m, want)
	}
	ks := "ffffffff81000000 T _stext\nffffffff81000010 t foo\nffffffff81000020 D bar\nffffffffc0000000 t mod_fn\t[mod]\n"
	m, err = parseFilterFunctions(strings.NewReader(ks), true)
	require.NoError(t, err)
	if want := map[string]int{"_stext": 1, "foo": 1}; !reflect.DeepEqual(m, want) {
		t.Errorf("kallsyms: got %v, want %v", m, want)
	}
	ei, err := parseErrorInjectList(strings.NewReader("should_failslab\tERRNO\nopen_ctree\tERRNO\n"))
	if err != nil || !ei["should_failslab"] || !ei["open_ctree"] || len(ei) != 2 {
		t.Errorf("error injection list: %v, %v", ei, err)
	}
}

func FuzzFilterFunctions(f *testing.F) {
	f.Add([]byte("get_next_ino\nvirtnet_probe [virtio_net]\n"), false)
	f.Add([]byte("ffffffff81000010 t foo\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, kallsyms bool) {
		m, err := parseFilterFunctions(strings.NewReader(string(b)), kallsyms)
		if err != nil {
			return
		}
		for name, n := range m {
			if name == "" || n < 1 || strings.ContainsAny(name, " \n") {
				t.Fatalf("bad entry %q: %d", name, n)
			}
		}
	})
}

func TestShapeMixesAndProgs(t *testing.T) {
	for _, m := range guestapi.DefaultShapeMixes {
		if _, ok := guestapi.ShapeMixes[m]; !ok {
			t.Errorf("default mix %s is not defined", m)
		}
	}
	for name, progs := range guestapi.ShapeMixes {
		if n := guestapi.ShapeName("get_next_ino", name); strings.ContainsAny(n, "/ \t") {
			t.Errorf("shape name %q is not a file name", n)
		}
		seen := map[string]bool{}
		for _, p := range progs {
			if seen[p.Name] {
				t.Errorf("mix %s: program %s twice", name, p.Name)
			}
			seen[p.Name] = true
			if p.Cookie && p.Kind != "fsession" {
				t.Errorf("mix %s: %s calls bpf_session_cookie but is %s", name, p.Name, p.Kind)
			}
			in, err := shapeProg(p, 1234)
			if err != nil {
				t.Fatalf("mix %s prog %s: %v", name, p.Name, err)
			}
			if _, err := marshalInsns(in); err != nil {
				t.Fatalf("mix %s prog %s: %v", name, p.Name, err)
			}
			calls := 0
			for _, ins := range in {
				if ins.IsBuiltinCall() || ins.IsKfuncCall() {
					calls++
				}
			}
			want := 0
			if p.IP {
				want++
			}
			if p.Cookie {
				want++
			}
			if calls != want {
				t.Errorf("mix %s prog %s: %d calls, want %d", name, p.Name, calls, want)
			}
		}
	}
	if _, err := shapeProg(guestapi.Prog{Name: "s", Kind: "fsession", Cookie: true}, 0); err == nil {
		t.Error("cookie program without the kfunc's BTF id built")
	}
}
