package arch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddrsCallThunks: the --addrs form carries the call-thunk symbols
// and reads them back; one that is not among the symbols is an error.
func TestAddrsCallThunks(t *testing.T) {
	a := Addrs{Image: 0x1000, Im: 0x2000, Func: 0x3000,
		Symbols:    map[string]uint64{"__bpf_prog_enter_sleepable_recur": 0x4000, "__bpf_tramp_enter": 0x5000},
		Progs:      map[string]ProgAddrs{},
		CallThunks: map[string]bool{"__bpf_prog_enter_sleepable_recur": true}}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	if !strings.Contains(string(b), `"call_thunks":["__bpf_prog_enter_sleepable_recur"]`) {
		t.Fatalf("%s", b)
	}
	var back Addrs
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.CallThunks["__bpf_prog_enter_sleepable_recur"] || back.CallThunks["__bpf_tramp_enter"] || len(back.CallThunks) != 1 {
		t.Errorf("read back %v", back.CallThunks)
	}
	bad := `{"image":"0x1","im":"0x2","func":"0x3","symbols":{},"progs":{},"call_thunks":["nosuch"]}`
	if err := json.Unmarshal([]byte(bad), &back); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown call thunk: %v", err)
	}
}
