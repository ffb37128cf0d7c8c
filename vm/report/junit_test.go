package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	junit "github.com/joshdk/go-junit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJUnitParses: the JUnit XML reads back with a JUnit parser (the one
// CI test reporters are written against) and with encoding/xml: a suite
// per build × arch with the boot's properties, a testcase per case, the
// failure carrying the diff, skips, errors for a case without result
// and for the VM error, the splats in system-err.
func TestJUnitParses(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJUnit(&b, sample()))
	suites, err := junit.Ingest(b.Bytes())
	require.NoError(t, err)
	require.Len(t, suites, 3)
	byName := map[string]junit.Suite{}
	for _, s := range suites {
		byName[s.Name] = s
	}
	x86 := byName["debian-7.2.13/x86_64"]
	assert.Equal(t, junit.Totals{Tests: 3, Passed: 2, Skipped: 1, Duration: 3740 * time.Millisecond}, x86.Totals)
	assert.Equal(t, map[string]string{"accel": "tcg", "cpu": "max", "cpu_model": "QEMU TCG CPU version 2.5+", "release": "7.2.13-amd64"}, x86.Properties)
	assert.Equal(t, "debian-7.2.13.x86_64", x86.Tests[0].Classname)
	assert.Equal(t, "attach_fentry", x86.Tests[0].Name)
	assert.Equal(t, 1200*time.Millisecond, x86.Tests[0].Duration)
	assert.Equal(t, junit.StatusSkipped, x86.Tests[2].Status)
	assert.Equal(t, "not in kernel", x86.Tests[2].Message)

	arm := byName["debian-7.2.13/arm64"]
	assert.Equal(t, 1, arm.Totals.Failed)
	bad := arm.Tests[1]
	assert.Equal(t, "slots_limit | mixed", bad.Name)
	assert.Equal(t, junit.StatusFailed, bad.Status)
	assert.Equal(t, "MISMATCH", bad.Message)
	var jerr junit.Error
	require.ErrorAs(t, bad.Error, &jerr)
	assert.Contains(t, jerr.Body, "line 12 attach p38: kernel E2BIG, model ok")
	assert.Contains(t, arm.SystemErr, "kernel warning at console line 412")

	hung := byName["debian-6.18.15/x86_64"]
	assert.Equal(t, junit.Totals{Tests: 3, Passed: 1, Error: 2, Duration: 601 * time.Second}, hung.Totals)
	assert.Equal(t, junit.StatusError, hung.Tests[1].Status)
	assert.Equal(t, "no result: VM error: guest hung: no record for 120s", hung.Tests[1].Message)
	assert.Equal(t, BootCase, hung.Tests[2].Name)
	assert.Equal(t, junit.StatusError, hung.Tests[2].Status)

	// encoding/xml: the document is well-formed, the counts add up and
	// the diff is exactly the problems, escaping and all.
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Tests int    `xml:"tests,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc))
	assert.Equal(t, [4]int{8, 1, 2, 1}, [4]int{doc.Tests, doc.Failures, doc.Errors, doc.Skipped})
	require.Len(t, doc.Suites, 3)
	f := doc.Suites[1].Cases[1].Failure
	require.NotNil(t, f)
	assert.Equal(t, strings.Join(sample().Runs[1].Cases[1].Problems, "\n"), f.Body)
	assert.True(t, strings.HasPrefix(b.String(), xml.Header))
}

// TestJUnitSplitAndEmpty: the parts of a build × arch split over shards
// are one suite; no runs is an empty, valid document.
func TestJUnitSplitAndEmpty(t *testing.T) {
	s := sample()
	r0 := s.Runs[0]
	a, b := r0, r0
	a.Cases, b.Cases = r0.Cases[:1], r0.Cases[1:]
	var out bytes.Buffer
	require.NoError(t, WriteJUnit(&out, &Results{Schema: SchemaVersion, Command: "check", Runs: []Run{a, b}}))
	suites, err := junit.Ingest(out.Bytes())
	require.NoError(t, err)
	require.Len(t, suites, 1)
	assert.Equal(t, 3, suites[0].Totals.Tests)
	out.Reset()
	require.NoError(t, WriteJUnit(&out, &Results{Schema: SchemaVersion, Command: "fuzz"}))
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Tests   int      `xml:"tests,attr"`
	}
	require.NoError(t, xml.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, 0, doc.Tests)
}
