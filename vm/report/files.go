package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// WriteFiles writes r as JSON, JUnit XML and Markdown to the files named
// ("" for none, "-" for stdout); an error names the flag of the file
// (--json, --junit, --markdown).
func (r *Results) WriteFiles(stdout io.Writer, jsonPath, junitPath, markdownPath string) error {
	outs := []struct {
		flag, path string
		render     func(io.Writer) error
	}{
		{"--json", jsonPath, func(w io.Writer) error {
			b, err := r.Marshal()
			if err == nil {
				_, err = w.Write(b)
			}
			return err
		}},
		{"--junit", junitPath, func(w io.Writer) error { return WriteJUnit(w, r) }},
		{"--markdown", markdownPath, func(w io.Writer) error { return WriteMarkdown(w, r) }},
	}
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		var b bytes.Buffer
		if err := o.render(&b); err != nil {
			return fmt.Errorf("%s: %w", o.flag, err)
		}
		var err error
		if o.path == "-" {
			_, err = stdout.Write(b.Bytes())
		} else {
			err = os.WriteFile(o.path, b.Bytes(), 0o644)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.flag, err)
		}
	}
	return nil
}

// ReadFile reads and checks a results file (Parse); an error names the
// file.
func ReadFile(path string) (*Results, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
