package kernels

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one apt source entry, from either file format.
type Source struct {
	File       string
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	// SignedBy is the keyring path(s) or an inline key. An inline key keeps
	// its deb822 continuation lines verbatim, so RenderSources can write it
	// back unchanged.
	SignedBy string
	Enabled  bool
}

// ParseDeb822 parses a deb822-style .sources file.
func ParseDeb822(data []byte) ([]Source, error) {
	var out []Source
	var cur map[string]string
	var last string
	flush := func() {
		if cur == nil {
			return
		}
		s := Source{
			Types:      strings.Fields(cur["types"]),
			URIs:       strings.Fields(cur["uris"]),
			Suites:     strings.Fields(cur["suites"]),
			Components: strings.Fields(cur["components"]),
			SignedBy:   cur["signed-by"],
			Enabled:    !strings.EqualFold(strings.TrimSpace(cur["enabled"]), "no"),
		}
		out = append(out, s)
		cur, last = nil, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil || last == "" {
				return nil, fmt.Errorf("line %d: continuation line without a field", n)
			}
			cur[last] += "\n" + line
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: not a field: %q", n, line)
			}
			if cur == nil {
				cur = map[string]string{}
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out, sc.Err()
}

// ParseOneLine parses a one-line-style sources.list file.
func ParseOneLine(data []byte) ([]Source, error) {
	var out []Source
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		typ, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		s := Source{Types: []string{typ}, Enabled: true}
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated option list", n)
			}
			for _, opt := range strings.Fields(rest[1:end]) {
				k, v, _ := strings.Cut(opt, "=")
				if strings.EqualFold(k, "signed-by") {
					s.SignedBy = strings.ReplaceAll(v, ",", " ")
				}
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want URI and suite: %q", n, line)
		}
		s.URIs = []string{f[0]}
		s.Suites = []string{f[1]}
		s.Components = f[2:]
		out = append(out, s)
	}
	return out, sc.Err()
}

// LoadSources reads every apt source under etcApt (normally /etc/apt):
// sources.list, sources.list.d/*.list and sources.list.d/*.sources.
func LoadSources(etcApt string) ([]Source, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(etcApt, "sources.list")); err == nil {
		files = append(files, filepath.Join(etcApt, "sources.list"))
	}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", pat))
		sort.Strings(m)
		files = append(files, m...)
	}
	var all []Source
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var srcs []Source
		if strings.HasSuffix(f, ".sources") {
			srcs, err = ParseDeb822(data)
		} else {
			srcs, err = ParseOneLine(data)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i := range srcs {
			srcs[i].File = f
		}
		all = append(all, srcs...)
	}
	return all, nil
}

// PickDebian chooses the machine's main Debian archive entry: an enabled
// "deb" entry that is not a security, debug or ports archive, preferring a
// URI whose path ends in /debian.
func PickDebian(srcs []Source) (uri, signedBy string, err error) {
	best := -1
	bestScore := 0
	for i, s := range srcs {
		if !s.Enabled || !contains(s.Types, "deb") || len(s.URIs) == 0 {
			continue
		}
		u := strings.TrimRight(s.URIs[0], "/")
		if strings.HasPrefix(u, "cdrom:") {
			continue
		}
		base := u[strings.LastIndexByte(u, '/')+1:]
		if base == "debian-security" || base == "debian-debug" || base == "debian-ports" {
			continue
		}
		security := false
		for _, su := range s.Suites {
			if strings.HasSuffix(su, "-security") || strings.HasSuffix(su, "/updates") {
				security = true
			}
		}
		if security {
			continue
		}
		score := 1
		if base == "debian" {
			score = 2
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		var seen []string
		for _, s := range srcs {
			seen = append(seen, fmt.Sprintf("%s %v %v", s.File, s.URIs, s.Suites))
		}
		return "", "", fmt.Errorf("no Debian archive entry found among apt sources (saw: %s); tramp fetches kernels through the machine's own Debian apt source", strings.Join(seen, "; "))
	}
	return strings.TrimRight(srcs[best].URIs[0], "/"), srcs[best].SignedBy, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// RenderSources writes a deb822 sources file for suites (component main)
// from uri with the given Signed-By value (may be empty: apt then uses its
// default trusted keys).
func RenderSources(uri, signedBy string, suites []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n", uri, strings.Join(suites, " "))
	if signedBy != "" {
		fmt.Fprintf(&b, "Signed-By: %s\n", signedBy)
	}
	return b.Bytes()
}
