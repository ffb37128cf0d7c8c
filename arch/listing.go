package arch

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Line is one instruction of an annotated listing.
type Line struct {
	Off     int    `json:"off"`
	Bytes   []byte `json:"-"`
	Hex     string `json:"bytes"`
	Text    string `json:"insn"`
	Comment string `json:"comment,omitempty"`
	// Labels that name this offset.
	Labels []string `json:"labels,omitempty"`
}

// LabelsAt gives the labels at an offset.
func (im *Image) LabelsAt(off int) []string {
	var out []string
	for _, l := range im.Labels {
		if l.Off == off {
			out = append(out, l.Name)
		}
	}
	return out
}

// SlotAt names the frame slot containing base-register offset off
// ("arg0", "cookie1+4", ...), or "".
func (im *Image) SlotAt(off int) string {
	for _, s := range im.Frame {
		if off >= s.Off && off < s.Off+s.Size {
			if off == s.Off {
				return s.Name
			}
			return fmt.Sprintf("%s+%d", s.Name, off-s.Off)
		}
	}
	return ""
}

// DescribeFuncMeta explains a func_meta word.
func DescribeFuncMeta(v uint64) string {
	s := fmt.Sprintf("func_meta: nr_args %d", v&0xff)
	if idx := (v >> 8) & 0xff; idx != 0 {
		s += fmt.Sprintf(", cookie index %d (ctx-%d)", idx, 8*idx)
	}
	if v>>63 != 0 {
		s += ", is_return"
	}
	return s
}

// WriteListing prints an annotated listing: labels on their own lines,
// then offset, bytes, instruction and comment.
func WriteListing(w io.Writer, lines []Line) {
	for _, l := range lines {
		for _, lb := range l.Labels {
			fmt.Fprintf(w, "%s:\n", lb)
		}
		hex := l.Hex
		if len(hex) > 30 {
			hex = hex[:27] + "..."
		}
		c := ""
		if l.Comment != "" {
			c = "  ; " + l.Comment
		}
		fmt.Fprintf(w, "  %4x:  %-30s  %-38s%s\n", l.Off, hex, l.Text, c)
	}
}

// WriteFrame draws the stack frame, highest address first.
func WriteFrame(w io.Writer, im *Image, base string) {
	fmt.Fprintf(w, "frame (%d bytes reserved):\n", im.FrameSize)
	slots := append([]Slot(nil), im.Frame...)
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].Off > slots[j].Off })
	for _, s := range slots {
		fmt.Fprintf(w, "  [%s%+5d] %3d  %s\n", base, s.Off, s.Size, s.Name)
	}
}

// HexBytes formats bytes as space-separated hex.
func HexBytes(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}
