package x86

import (
	"encoding/hex"
	"testing"
)

// Every form of a sealed or live ENDBR the recorded kernels show, and
// nothing else, moves the patch site by 4.
func TestStartsWithEndbr(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"f30f1efae8", true},  // endbr64 (7.2.13 and most)
		{"0f1f40d6e8", true},  // sealed, 6.18 on
		{"660f1f00e8", true},  // sealed, 6.12 to 6.17
		{"e8a7cb563e", false}, // the patch site itself: no ENDBR
		{"660f1f40e8", false},
		{"f30f", false},
	} {
		b, err := hex.DecodeString(tc.head)
		if err != nil {
			t.Fatal(err)
		}
		if got := StartsWithEndbr(b); got != tc.want {
			t.Errorf("StartsWithEndbr(%s) = %v, want %v", tc.head, got, tc.want)
		}
	}
}
