package channel

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

type nopSync struct {
	bytes.Buffer
	syncs int
}

func (n *nopSync) Sync() error { n.syncs++; return errors.New("fsync refused") }

func stream(t *testing.T, recs ...[2]string) []byte {
	t.Helper()
	var w nopSync
	e := NewEncoder(&w)
	for _, r := range recs {
		if err := e.EmitRaw(r[0], []byte(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	if w.syncs != len(recs) {
		t.Fatalf("Sync called %d times, want %d", w.syncs, len(recs))
	}
	return w.Bytes()
}

func TestFrameLayout(t *testing.T) {
	b, err := Frame(7, "hi", []byte(`{}`))
	require.NoError(t, err)
	want := "54524d50" + "01" + "02" + "0000" + "00000007" + "00000002"
	if got := hex.EncodeToString(b[:16]); got != want {
		t.Fatalf("header = %s, want %s", got, want)
	}
	if string(b[20:]) != `hi{}` {
		t.Fatalf("body = %q", b[20:])
	}
	if len(b) != 24 {
		t.Fatalf("len = %d", len(b))
	}
}

func TestRoundTripByteByByte(t *testing.T) {
	s := stream(t, [2]string{"hello", `{"a":1}`}, [2]string{"done", `null`}, [2]string{"x.y-z_0", `"s"`})
	var d Decoder
	var got []Record
	for i := range s {
		recs, err := d.Feed(s[i : i+1])
		require.NoError(t, err)
		got = append(got, recs...)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Kind != "hello" || string(got[0].Payload) != `{"a":1}` || got[2].Seq != 2 || got[1].Offset != int64(20+5+7) {
		t.Fatalf("got %+v", got)
	}
	var v struct{ A int }
	if err := got[0].Decode(&v); err != nil || v.A != 1 {
		t.Fatalf("Decode: %v %v", v, err)
	}
}

func TestTruncatedKeepsEarlier(t *testing.T) {
	s := stream(t, [2]string{"hello", `{}`}, [2]string{"tick", `{"n":1}`})
	first := HeaderSize + 5 + 2
	for cut := first + 1; cut < len(s); cut++ {
		recs, err := ReadAll(bytes.NewReader(s[:cut]))
		var te *TruncatedError
		if !errors.As(err, &te) {
			t.Fatalf("cut %d: err = %v, want TruncatedError", cut, err)
		}
		if te.Offset != int64(first) || len(recs) != 1 || recs[0].Kind != "hello" {
			t.Fatalf("cut %d: %v %+v", cut, te, recs)
		}
	}
}

func TestCorruption(t *testing.T) {
	s := stream(t, [2]string{"hello", `{}`}, [2]string{"tick", `{"n":1}`}, [2]string{"done", `{}`})
	second := int64(HeaderSize + 5 + 2)
	cases := map[string]func(b []byte){
		"magic":    func(b []byte) { b[second] = 'X' },
		"version":  func(b []byte) { b[second+4] = 9 },
		"kindlen":  func(b []byte) { b[second+5] = 0 },
		"reserved": func(b []byte) { b[second+7] = 1 },
		"seq":      func(b []byte) { b[second+11] = 5 },
		"length":   func(b []byte) { binary.BigEndian.PutUint32(b[second+12:], MaxPayload+1) },
		"crc":      func(b []byte) { b[second+16] ^= 1 },
		"payload":  func(b []byte) { b[second+HeaderSize+4] ^= 0x20 },
	}
	for name, mut := range cases {
		b := bytes.Clone(s)
		mut(b)
		recs, err := ReadAll(bytes.NewReader(b))
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want CorruptError", name, err)
			continue
		}
		if ce.Offset != second || len(recs) != 1 {
			t.Errorf("%s: offset %d, %d records; want %d, 1 (%v)", name, ce.Offset, len(recs), second, err)
		}
	}
}

func TestGarbageReportedEarly(t *testing.T) {
	var d Decoder
	_, err := d.Feed([]byte("\r\n"))
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 0 {
		t.Fatalf("err = %v", err)
	}
	if _, err2 := d.Feed([]byte("more")); err2 != err {
		t.Fatalf("sticky error lost: %v", err2)
	}
}

func TestEmitRejects(t *testing.T) {
	e := NewEncoder(io.Discard)
	if err := e.EmitRaw("Bad Kind", []byte(`1`)); err == nil {
		t.Error("bad kind accepted")
	}
	if err := e.EmitRaw("k", []byte(`{`)); err == nil {
		t.Error("bad JSON accepted")
	}
	if err := e.Emit("k", func() {}); err == nil {
		t.Error("unmarshalable value accepted")
	}
}

func FuzzDecode(f *testing.F) {
	var w bytes.Buffer
	e := NewEncoder(&w)
	_ = e.Emit("hello", map[string]string{"release": "7.2.13"})
	_ = e.Emit("done", struct{}{})
	good := w.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{})
	f.Add([]byte("TRMP"))
	f.Add([]byte("TRMP\x01\x05\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadAll(bytes.NewReader(data))
		var consumed int64
		for _, r := range recs {
			if r.Offset != consumed {
				t.Fatalf("record offset %d, want %d", r.Offset, consumed)
			}
			consumed += int64(HeaderSize + len(r.Kind) + len(r.Payload))
		}
		if err == nil && consumed != int64(len(data)) {
			t.Fatalf("no error but consumed %d of %d bytes", consumed, len(data))
		}
		// Re-encoding the decoded records reproduces the consumed prefix.
		var re bytes.Buffer
		e := NewEncoder(&re)
		for _, r := range recs {
			if err := e.EmitRaw(r.Kind, r.Payload); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(re.Bytes(), data[:consumed]) {
			t.Fatal("re-encoding differs")
		}
	})
}
