package cases

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

//go:embed *.tramp
var corpusFS embed.FS

// Corpus parses every case of the built-in corpus (the *.tramp files of
// this folder), sorted by name.
func Corpus() ([]*Case, error) {
	names, err := fs.Glob(corpusFS, "*.tramp")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Case
	for _, n := range names {
		src, err := corpusFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		c, err := Parse(path.Join("cases", n), src)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// CorpusByName is the built-in corpus keyed by case name.
func CorpusByName() (map[string]*Case, error) {
	cs, err := Corpus()
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Case, len(cs))
	for _, c := range cs {
		m[c.Name] = c
	}
	return m, nil
}
