package recording

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A pack holds every recording of one build and arch in one gzipped
// file, root/<build>/<arch>.json.gz: the form of the builds recorded for
// offline CI (the matrix), which keeps the checkout small. Recordings
// with their own files and packs load alike (LoadAll).
type pack struct {
	Schema     int          `json:"schema"`
	Kernel     string       `json:"kernel"`
	Arch       string       `json:"arch"`
	Recordings []*Recording `json:"recordings"`
}

// PackPath is where the pack of a build and arch lives under root.
func PackPath(root, profile, arch string) string {
	return filepath.Join(root, profile, arch+".json.gz")
}

// Packed is one pack WritePack wrote: where, how many recordings it
// holds (after the merge) and its size.
type Packed struct {
	Path       string
	Recordings int
	Bytes      int
}

// WritePack stores recs in the packs of their builds and arches under
// root, each merged with the pack already there (a recording replaces the
// one of the same case and variant), atomically and byte-reproducibly
// (sorted, no gzip timestamp). It returns the packs written.
func WritePack(root string, recs []*Recording) ([]Packed, error) {
	type key struct{ profile, arch string }
	groups := map[key][]*Recording{}
	var keys []key
	for _, r := range recs {
		k := key{r.Profile, r.Arch}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	var written []Packed
	for _, k := range keys {
		p := PackPath(root, k.profile, k.arch)
		byName := map[string]*Recording{}
		if old, err := LoadPack(p); err == nil {
			for _, r := range old {
				byName[filepath.Base(PathOf("", r))] = r
			}
		} else if !os.IsNotExist(err) {
			return written, err
		}
		for _, r := range groups[k] {
			byName[filepath.Base(PathOf("", r))] = r
		}
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		slices.Sort(names)
		pk := pack{Schema: Schema, Kernel: k.profile, Arch: k.arch}
		for _, n := range names {
			pk.Recordings = append(pk.Recordings, byName[n])
		}
		raw, err := json.Marshal(pk)
		if err != nil {
			return written, err
		}
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		w.Write(raw)
		if err := w.Close(); err != nil {
			return written, err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, gz.Bytes(), 0o644); err != nil {
			return written, err
		}
		if err := os.Rename(tmp, p); err != nil {
			return written, err
		}
		written = append(written, Packed{Path: p, Recordings: len(pk.Recordings), Bytes: gz.Len()})
	}
	return written, nil
}

// LoadPack reads a pack file (ParsePack).
func LoadPack(path string) ([]*Recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePack(path, b)
}

// maxPack bounds a pack's uncompressed size.
const maxPack = 256 << 20

// ParsePack decodes a gzipped pack and checks every recording in it as
// Parse does, and that each is of the pack's build and arch. name
// prefixes every error.
func ParsePack(name string, b []byte) ([]*Recording, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxPack+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(raw) > maxPack {
		return nil, fmt.Errorf("%s: more than %d MiB uncompressed", name, maxPack>>20)
	}
	var pk struct {
		Schema     int               `json:"schema"`
		Kernel     string            `json:"kernel"`
		Arch       string            `json:"arch"`
		Recordings []json.RawMessage `json:"recordings"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pk); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more after the pack", name)
	}
	if pk.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %d, this tramp reads %d", name, pk.Schema, Schema)
	}
	if pk.Kernel == "" || pk.Arch == "" {
		return nil, fmt.Errorf("%s: kernel and arch are required", name)
	}
	var out []*Recording
	seen := map[string]bool{}
	for i, m := range pk.Recordings {
		r, err := Parse(fmt.Sprintf("%s: recording %d", name, i), m)
		if err != nil {
			return nil, err
		}
		if r.Profile != pk.Kernel || r.Arch != pk.Arch {
			return nil, fmt.Errorf("%s: recording %d (%s) is of %s %s, the pack of %s %s", name, i, r.Case, r.Profile, r.Arch, pk.Kernel, pk.Arch)
		}
		k := filepath.Base(PathOf("", r))
		if seen[k] {
			return nil, fmt.Errorf("%s: %s twice", name, strings.TrimSuffix(k, ".json"))
		}
		seen[k] = true
		out = append(out, r)
	}
	return out, nil
}
