package arch

import (
	"fmt"
	"io"
	"strings"
)

// DiffOp says how a line of an instruction diff relates the two sides.
type DiffOp byte

// Diff operations.
const (
	Same    DiffOp = ' '
	Removed DiffOp = '-'
	Added   DiffOp = '+'
)

// DiffLine is one line of an instruction-level diff.
type DiffLine struct {
	Op   DiffOp
	A, B *Line // nil on the side that lacks the line
}

// lineKey is what two instructions must share to count as the same: their
// bytes with relocated fields replaced by the relocation's symbol, so that
// a moved call to the same helper is the same instruction.
func lineKey(im *Image, l Line) string {
	// A branch inside the image is the same when it goes to the same label,
	// wherever the two sides put it.
	if i := strings.Index(l.Comment, "to "); i >= 0 && !strings.HasPrefix(l.Comment[i+3:], "+") {
		return strings.Fields(l.Text)[0] + " " + l.Comment[i:]
	}
	var sb strings.Builder
	for i := 0; i < len(l.Bytes); i++ {
		if r, ok := im.RelocAt(l.Off + i); ok {
			fmt.Fprintf(&sb, "<%s>", r.Sym)
			i = r.Off + r.Len - l.Off - 1
			continue
		}
		fmt.Fprintf(&sb, "%02x", l.Bytes[i])
	}
	return sb.String()
}

// Diff aligns two listings by longest common subsequence of their
// relocation-normalised instructions.
func Diff(imA *Image, a []Line, imB *Image, b []Line) []DiffLine {
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i := range a {
		ka[i] = lineKey(imA, a[i])
	}
	for j := range b {
		kb[j] = lineKey(imB, b[j])
	}
	// lcs[i][j]: common length of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if ka[i] == kb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []DiffLine
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && ka[i] == kb[j]:
			out = append(out, DiffLine{Op: Same, A: &a[i], B: &b[j]})
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, DiffLine{Op: Added, B: &b[j]})
			j++
		default:
			out = append(out, DiffLine{Op: Removed, A: &a[i]})
			i++
		}
	}
	return out
}

// WriteDiff prints a diff with both offsets; unchanged runs longer than
// context*2 are folded.
func WriteDiff(w io.Writer, d []DiffLine, context int) (changed int) {
	for _, l := range d {
		if l.Op != Same {
			changed++
		}
	}
	show := make([]bool, len(d))
	for i, l := range d {
		if l.Op != Same {
			for k := max(0, i-context); k <= min(len(d)-1, i+context); k++ {
				show[k] = true
			}
		}
	}
	skipped := 0
	for i, l := range d {
		if !show[i] {
			skipped++
			continue
		}
		if skipped > 0 {
			fmt.Fprintf(w, "   ... %d unchanged instructions ...\n", skipped)
			skipped = 0
		}
		offA, offB, text, c := "", "", "", ""
		if l.A != nil {
			offA = fmt.Sprintf("%x", l.A.Off)
			text, c = l.A.Text, l.A.Comment
		}
		if l.B != nil {
			offB = fmt.Sprintf("%x", l.B.Off)
			text, c = l.B.Text, l.B.Comment
		}
		if c != "" {
			c = "  ; " + c
		}
		fmt.Fprintf(w, "%c %4s %4s  %-38s%s\n", l.Op, offA, offB, text, c)
	}
	if skipped > 0 {
		fmt.Fprintf(w, "   ... %d unchanged instructions ...\n", skipped)
	}
	return changed
}
