package recorded

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Bytes is one captured range: the image's code and whatever followed it
// in the read, at the address the kernel put it.
type Bytes struct {
	File string
	Addr uint64
	Code []byte
}

// Captures reads every capture of the recordings matching glob, relative
// to dir (the repository's cases/testdata).
func Captures(dir, glob string) ([]Bytes, error) {
	files, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no recordings match %s under %s", glob, dir)
	}
	var out []Bytes
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rec struct {
			Captures []struct {
				Addr  uint64 `json:"addr"`
				Bytes string `json:"bytes"`
			} `json:"captures"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		for i, c := range rec.Captures {
			b, err := hex.DecodeString(c.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: capture %d: %v", f, i, err)
			}
			out = append(out, Bytes{File: f, Addr: c.Addr, Code: b})
		}
	}
	return out, nil
}
