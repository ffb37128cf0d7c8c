package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The JUnit XML elements WriteJUnit writes (the common schema that CI
// test reporters read).
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Skipped  int          `xml:"skipped,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string      `xml:"name,attr"`
		Tests      int         `xml:"tests,attr"`
		Failures   int         `xml:"failures,attr"`
		Errors     int         `xml:"errors,attr"`
		Skipped    int         `xml:"skipped,attr"`
		Time       string      `xml:"time,attr"`
		Properties *junitProps `xml:"properties,omitempty"`
		Cases      []junitCase `xml:"testcase"`
		SystemErr  string      `xml:"system-err,omitempty"`
	}
	junitProps struct {
		Props []junitProp `xml:"property"`
	}
	junitProp struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Classname string       `xml:"classname,attr"`
		Name      string       `xml:"name,attr"`
		Time      string       `xml:"time,attr"`
		Failure   *junitResult `xml:"failure,omitempty"`
		Error     *junitResult `xml:"error,omitempty"`
		Skipped   *junitResult `xml:"skipped,omitempty"`
	}
	junitResult struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr,omitempty"`
		Body    string `xml:",chardata"`
	}
)

// BootCase is the name of the extra testcase a build × arch's JUnit
// suite has when its boot had a VM error, so that the error fails the
// report even when every case had its result.
const BootCase = "(boot)"

func secsAttr(msec int64) string { return fmt.Sprintf("%.3f", float64(msec)/1000) }

// WriteJUnit writes r as JUnit XML: a testsuite per build × arch (named
// build/arch, its properties the boot's accel, cpu, cpu_model and
// release), a testcase per case (classname build.arch), a failure with
// the problems (the diff between kernel and model) for a case that
// disagrees, an error for one without a result or cut short, skipped for
// one the kernel cannot run; a VM error is an error of the testcase
// BootCase, and the kernel splats and console tail are the suite's
// system-err.
func WriteJUnit(w io.Writer, r *Results) error {
	out := junitSuites{Name: "tramp vm " + r.Command}
	index := map[string]int{}
	var total int64
	var suiteMS []int64
	for _, run := range r.Runs {
		key := run.Build + "/" + run.Arch
		i, ok := index[key]
		if !ok {
			i = len(out.Suites)
			index[key] = i
			s := junitSuite{Name: key}
			var props []junitProp
			for _, p := range [][2]string{{"accel", run.Accel}, {"cpu", run.CPU}, {"cpu_model", run.CPUModel}, {"release", run.Release}} {
				if p[1] != "" {
					props = append(props, junitProp{Name: p[0], Value: p[1]})
				}
			}
			if len(props) > 0 {
				s.Properties = &junitProps{Props: props}
			}
			out.Suites = append(out.Suites, s)
			suiteMS = append(suiteMS, 0)
		}
		s := &out.Suites[i]
		class := run.Build + "." + run.Arch
		for _, c := range run.Cases {
			tc := junitCase{Classname: class, Name: c.Case, Time: secsAttr(c.TimeMS)}
			switch {
			case c.Status == Pass:
			case c.Status == Skip:
				tc.Skipped = &junitResult{Message: c.Result}
				s.Skipped++
			case len(c.Problems) > 0:
				tc.Failure = &junitResult{Message: c.Result, Type: c.Result, Body: strings.Join(c.Problems, "\n")}
				s.Failures++
			default:
				msg := c.Result
				if run.Error != "" {
					msg += ": VM error: " + firstLine(run.Error)
				}
				tc.Error = &junitResult{Message: msg, Type: c.Result, Body: run.Error}
				s.Errors++
			}
			s.Cases = append(s.Cases, tc)
		}
		var serr []string
		if run.Error != "" {
			body := run.Error
			if len(run.ConsoleTail) > 0 {
				body += "\n\nlast console lines:\n" + strings.Join(run.ConsoleTail, "\n")
			}
			s.Cases = append(s.Cases, junitCase{Classname: class, Name: BootCase, Time: secsAttr(run.ElapsedMS),
				Error: &junitResult{Message: "VM error: " + firstLine(run.Error), Type: "vm error", Body: body}})
			s.Errors++
			serr = append(serr, "VM error: "+run.Error)
		}
		for _, sp := range run.Splats {
			serr = append(serr, fmt.Sprintf("kernel %s at console line %d:\n  %s", sp.Kind, sp.Line+1, strings.Join(sp.Excerpt, "\n  ")))
		}
		if len(serr) > 0 {
			if s.SystemErr != "" {
				s.SystemErr += "\n"
			}
			s.SystemErr += strings.Join(serr, "\n")
		}
		s.Tests = len(s.Cases)
		total += run.ElapsedMS
		suiteMS[i] += run.ElapsedMS
		s.Time = secsAttr(suiteMS[i])
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	out.Time = secsAttr(total)
	if out.Suites == nil {
		out.Suites = []junitSuite{}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
