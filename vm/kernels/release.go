package kernels

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
)

var releaseRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// DetectRelease reads the kernel release string from an image: an x86
// bzImage carries it in its setup header (kernel_version), an arm64 Image
// (uncompressed) in its "Linux version ..." banner.
func DetectRelease(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) > 0x210 && string(b[0x202:0x206]) == "HdrS" {
		off := int(binary.LittleEndian.Uint16(b[0x20e:])) + 0x200
		if off > 0x200 && off < len(b) {
			s := b[off:]
			if i := bytes.IndexAny(s, " \x00"); i > 0 {
				return string(s[:i]), nil
			}
		}
	}
	if isS390Image(b) {
		// The banner is in the compressed kernel.
		if raw, err := s390Payload(b); err == nil {
			b = raw
		}
	}
	if i := bytes.Index(b, []byte("Linux version ")); i >= 0 {
		s := b[i+len("Linux version "):]
		if j := bytes.IndexAny(s, " \x00"); j > 0 {
			return string(s[:j]), nil
		}
	}
	return "", fmt.Errorf("%s: no kernel release string found (not an x86 bzImage or an uncompressed arm64 Image?)", path)
}

// ParseRelease splits a release such as "7.2.13+deb14-cloud-amd64".
func ParseRelease(rel string) (major, minor, patch int, ok bool) {
	m := releaseRE.FindStringSubmatch(rel)
	if m == nil {
		return 0, 0, 0, false
	}
	fmt.Sscan(m[1], &major)
	fmt.Sscan(m[2], &minor)
	fmt.Sscan(m[3], &patch)
	return major, minor, patch, true
}
