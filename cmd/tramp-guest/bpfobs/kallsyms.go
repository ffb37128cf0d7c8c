package bpfobs

import (
	"bufio"
	"bytes"
	"github.com/bpftramp/tramp/vm/guestapi"
	"io"
	"sort"
	"strconv"
)

// parseKallsymsLine parses one line (without its newline).
func parseKallsymsLine(line []byte) (guestapi.Sym, bool) {
	var s guestapi.Sym
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 16 || len(line) < sp+4 || line[sp+2] != ' ' {
		return s, false
	}
	a, err := strconv.ParseUint(string(line[:sp]), 16, 64)
	if err != nil {
		return s, false
	}
	s.Addr = a
	s.Type = string(line[sp+1 : sp+2])
	rest := line[sp+3:]
	if tab := bytes.LastIndexByte(rest, '\t'); tab >= 0 {
		mod := rest[tab+1:]
		rest = rest[:tab]
		if len(mod) >= 2 && mod[0] == '[' && mod[len(mod)-1] == ']' {
			s.Module = string(mod[1 : len(mod)-1])
		}
	}
	if len(rest) == 0 {
		return s, false
	}
	s.Name = string(rest)
	return s, true
}

// scanKallsyms reads kallsyms text and calls keep for each line; the
// line is only parsed when keep's cheap pre-filter (on raw bytes)
// accepts it. A nil filter accepts everything.
func scanKallsyms(r io.Reader, filter func(line []byte) bool, fn func(guestapi.Sym)) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if filter == nil || filter(line) {
				if s, ok := parseKallsymsLine(line); ok {
					fn(s)
				}
			}
		}
		if err == bufio.ErrBufferFull {
			// Absurdly long line: skip the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var bpfSuffix = []byte("\t[bpf]")

// isBPFLine is the per-step pre-filter: only symbols of the "bpf" pseudo
// module (trampolines, JITed programs, dispatchers) move.
func isBPFLine(line []byte) bool { return bytes.HasSuffix(line, bpfSuffix) }

// readNamed returns the addresses of the named (module-less) symbols and
// of any symbol whose name has one of the prefixes. The first occurrence
// of a name wins.
func readNamed(r io.Reader, names []string, prefixes []string) (map[string]uint64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]uint64{}
	err := scanKallsyms(r, func(line []byte) bool { return !bytes.HasSuffix(line, []byte("]")) }, func(s guestapi.Sym) {
		if _, dup := out[s.Name]; dup {
			return
		}
		if want[s.Name] {
			out[s.Name] = s.Addr
			return
		}
		for _, p := range prefixes {
			if len(s.Name) >= len(p) && s.Name[:len(p)] == p {
				out[s.Name] = s.Addr
				return
			}
		}
	})
	return out, err
}

// readBPFSyms returns the [bpf] symbols sorted by address.
func readBPFSyms(r io.Reader) ([]guestapi.Sym, error) {
	var out []guestapi.Sym
	err := scanKallsyms(r, isBPFLine, func(s guestapi.Sym) { out = append(out, s) })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out, err
}

// nextAfter returns the lowest address in syms greater than addr, or 0.
func nextAfter(syms []guestapi.Sym, addr uint64) (guestapi.Sym, bool) {
	i := sort.Search(len(syms), func(i int) bool { return syms[i].Addr > addr })
	if i < len(syms) {
		return syms[i], true
	}
	return guestapi.Sym{}, false
}
