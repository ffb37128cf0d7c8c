package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse never panics; what it accepts writes back to JSON
// that parses to the same results, renders as a table, Markdown and
// well-formed JUnit XML without panicking, and merges with itself only
// when it has no case (a case in both is a duplicate).
func FuzzParse(f *testing.F) {
	good, err := sample().Marshal()
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"schema":1,"command":"check","shard":"2/3","runs":[{"build":"b","arch":"a","cases":[{"case":"c","status":"skip"}]}]}`))
	f.Add([]byte(`{"schema":1,"command":"fuzz","runs":[]}`))
	f.Add([]byte(`[{"kernel":"debian-7.2.13","arch":"x86_64","cases":[]}]`))
	f.Add([]byte(`{"schema":2}`))
	f.Add([]byte("{\"schema\":1,\n\"runs\":[}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("written JSON does not parse: %v\n%s", err, b)
		}
		b2, _ := back.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the results:\n%s\n%s", b, b2)
		}
		WriteTable(io.Discard, r)
		if err := WriteMarkdown(io.Discard, r); err != nil {
			t.Fatal(err)
		}
		var x bytes.Buffer
		if err := WriteJUnit(&x, r); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			XMLName xml.Name `xml:"testsuites"`
		}
		if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
			t.Fatalf("JUnit XML does not parse: %v\n%s", err, x.Bytes())
		}
		r.Shard, back.Shard = "", ""
		_, err = Merge([]File{{"a", r}, {"b", back}})
		if hasCase := r.Totals() != (Totals{VMErrors: r.Totals().VMErrors}); hasCase != (err != nil) {
			t.Fatalf("merge with itself: cases %v, error %v", hasCase, err)
		}
	})
}
