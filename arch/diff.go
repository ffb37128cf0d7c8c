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
// bytes, with a relocated field replaced by the relocation's symbol and
// what its bytes say (the target relative to the image for a relative
// field, the bytes themselves otherwise), so that a moved call to the
// same address is the same instruction and a call to another address,
// or a field whose bytes disagree with its symbol, is not.
func lineKey(im *Image, l Line) string { return key(im, l, false) }

// symbolKey is lineKey for images of two different boots: a relocated
// field counts by the symbol it names alone, since its bytes are that
// boot's addresses (both images must be ones the generator reproduced,
// so that the bytes do say the symbol).
func symbolKey(im *Image, l Line) string { return key(im, l, true) }

func key(im *Image, l Line, bySymbol bool) string {
	// A branch inside the image is the same when it goes to the same label,
	// wherever the two sides put it.
	// Everything but the target operand must still agree (the register
	// of a cbnz, the condition of a jcc).
	if i := strings.Index(l.Comment, "to "); i >= 0 && !strings.HasPrefix(l.Comment[i+3:], "+") {
		f := strings.Fields(l.Text)
		return strings.Join(f[:max(1, len(f)-1)], " ") + " " + l.Comment[i:]
	}
	var sb strings.Builder
	for i := 0; i < len(l.Bytes); i++ {
		if r, ok := im.RelocAt(l.Off + i); ok {
			if bySymbol {
				fmt.Fprintf(&sb, "<%s>", r.Sym)
			} else {
				fmt.Fprintf(&sb, "<%s=%s>", r.Sym, fieldKey(r, im.Code))
			}
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
	return diff(imA, a, imB, b, lineKey)
}

// DiffBoots is Diff for the images of two boots (real against real, say
// two kernel builds): relocated fields count by the symbol they name, so
// that only a change of code shows, not the boots' addresses.
func DiffBoots(imA *Image, a []Line, imB *Image, b []Line) []DiffLine {
	return diff(imA, a, imB, b, symbolKey)
}

// Signature is what DiffBoots compares of a whole listing: equal
// signatures mean no line of the diff would change.
func Signature(im *Image, lines []Line) string {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(symbolKey(im, l))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func diff(imA *Image, a []Line, imB *Image, b []Line, key func(*Image, Line) string) []DiffLine {
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i := range a {
		ka[i] = key(imA, a[i])
	}
	for j := range b {
		kb[j] = key(imB, b[j])
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

// fieldKey is what a relocated field's bytes say, independent of where
// the instruction sits: a relative field's target as an offset from the
// image start, any other field's bytes.
func fieldKey(r Reloc, code []byte) string {
	if r.Off < 0 || r.Off+r.Len > len(code) {
		return "?"
	}
	f := code[r.Off : r.Off+r.Len]
	le32 := func() int64 {
		return int64(int32(uint32(f[0]) | uint32(f[1])<<8 | uint32(f[2])<<16 | uint32(f[3])<<24))
	}
	switch {
	case (r.Kind == RelCall32 || r.Kind == RelJump32) && r.Len == 4:
		return fmt.Sprintf("image%+#x", le32()+int64(r.Off+r.Len))
	case r.Kind == RelRIP32Imm8 && r.Len == 4:
		return fmt.Sprintf("image%+#x", le32()+int64(r.Off+r.Len+1))
	case r.Kind == A64Branch26 && r.Len == 4:
		imm := int64(int32(uint32(le32())<<6) >> 6)
		return fmt.Sprintf("image%+#x", imm*4+int64(r.Off))
	case r.Kind == S390RIL && r.Len == 6:
		rel := int64(int32(uint32(f[2])<<24 | uint32(f[3])<<16 | uint32(f[4])<<8 | uint32(f[5])))
		return fmt.Sprintf("image%+#x", rel*2+int64(r.Off))
	}
	return fmt.Sprintf("%x", f)
}
