package channel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Magic opens every record.
const Magic = "TRMP"

// Version is the format version written in byte 4 of each record.
const Version = 1

// HeaderSize is the size of the fixed part of a record.
const HeaderSize = 20

// MaxKind is the longest kind string.
const MaxKind = 64

// MaxPayload bounds a payload, so that a corrupted length cannot make the
// decoder wait for (or allocate) gigabytes.
const MaxPayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded record.
type Record struct {
	Seq     uint32          `json:"seq"`
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
	// Offset is the byte offset of the record's first byte in the stream.
	Offset int64 `json:"offset"`
}

// Decode unmarshals the record's payload into v.
func (r Record) Decode(v any) error {
	if err := json.Unmarshal(r.Payload, v); err != nil {
		return fmt.Errorf("record %d (%s) at offset %d: %w", r.Seq, r.Kind, r.Offset, err)
	}
	return nil
}

// DecodeKeep decodes the payload into v and reports whether it could; the
// first failure of a stream is kept in *first (collectors go on with the
// records after a bad one and report it at the end).
func (r Record) DecodeKeep(v any, first *error) bool {
	if err := r.Decode(v); err != nil {
		if *first == nil {
			*first = err
		}
		return false
	}
	return true
}

// ValidKind reports whether s may be used as a record kind.
func ValidKind(s string) bool {
	if len(s) == 0 || len(s) > MaxKind {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// Frame encodes one record.
func Frame(seq uint32, kind string, payload []byte) ([]byte, error) {
	if !ValidKind(kind) {
		return nil, fmt.Errorf("channel: invalid record kind %q", kind)
	}
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("channel: payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("channel: payload of record %q is not valid JSON", kind)
	}
	b := make([]byte, HeaderSize+len(kind)+len(payload))
	copy(b, Magic)
	b[4] = Version
	b[5] = byte(len(kind))
	binary.BigEndian.PutUint32(b[8:], seq)
	binary.BigEndian.PutUint32(b[12:], uint32(len(payload)))
	copy(b[HeaderSize:], kind)
	copy(b[HeaderSize+len(kind):], payload)
	binary.BigEndian.PutUint32(b[16:], checksum(b[:16], b[HeaderSize:]))
	return b, nil
}

func checksum(head, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, head)
	return crc32.Update(c, castagnoli, body)
}

// Encoder writes records to an io.Writer, one Write call per record. It is
// safe for concurrent use.
type Encoder struct {
	mu  sync.Mutex
	w   io.Writer
	seq uint32
}

// NewEncoder returns an Encoder writing to w. If w has a Sync method (an
// *os.File does) it is called after every record; its error is ignored
// because character devices commonly refuse fsync while the data has already
// been handed to the device.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Emit marshals v as JSON and writes it as a record of the given kind.
func (e *Encoder) Emit(kind string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("channel: marshal %s record: %w", kind, err)
	}
	return e.EmitRaw(kind, payload)
}

// EmitRaw writes payload, which must be valid JSON, as a record.
func (e *Encoder) EmitRaw(kind string, payload []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := Frame(e.seq, kind, payload)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		n, err := e.w.Write(b)
		if err != nil {
			return fmt.Errorf("channel: write %s record: %w", kind, err)
		}
		b = b[n:]
	}
	e.seq++
	if s, ok := e.w.(interface{ Sync() error }); ok {
		_ = s.Sync()
	}
	return nil
}

// CorruptError reports bytes that are not a valid record.
type CorruptError struct {
	Offset int64 // offset of the first byte of the bad record
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt result record at byte offset %d: %s", e.Offset, e.Reason)
}

// TruncatedError reports a stream that ends inside a record.
type TruncatedError struct {
	Offset int64 // offset of the incomplete record
	Have   int   // bytes present
	Want   int   // bytes the record needs (0 if the header itself is incomplete)
}

func (e *TruncatedError) Error() string {
	if e.Want == 0 {
		return fmt.Sprintf("truncated result record at byte offset %d: only %d header bytes", e.Offset, e.Have)
	}
	return fmt.Sprintf("truncated result record at byte offset %d: %d of %d bytes", e.Offset, e.Have, e.Want)
}

// Decoder decodes a record stream fed to it in arbitrary pieces.
type Decoder struct {
	buf  []byte
	off  int64 // stream offset of buf[0]
	seq  uint32
	err  error
	done bool
}

// Feed appends p to the stream and returns the records it completes. After
// corruption is found, Feed returns the records decoded before it together
// with a *CorruptError, and every later call returns that error again.
func (d *Decoder) Feed(p []byte) ([]Record, error) {
	if d.err != nil {
		return nil, d.err
	}
	d.buf = append(d.buf, p...)
	var out []Record
	for {
		rec, n, err := d.parse()
		if err != nil {
			d.err = err
			d.buf = nil
			return out, err
		}
		if n == 0 {
			break
		}
		out = append(out, rec)
		d.buf = d.buf[n:]
		d.off += int64(n)
		d.seq++
	}
	if len(d.buf) == 0 {
		d.buf = nil // let the backing array go
	}
	return out, nil
}

// Offset returns the number of bytes consumed by complete records.
func (d *Decoder) Offset() int64 { return d.off }

// Close ends the stream. It returns a *TruncatedError if the stream ended
// inside a record, or the corruption error seen earlier.
func (d *Decoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) == 0 {
		return nil
	}
	e := &TruncatedError{Offset: d.off, Have: len(d.buf)}
	if len(d.buf) >= HeaderSize {
		e.Want = HeaderSize + int(d.buf[5]) + int(binary.BigEndian.Uint32(d.buf[12:]))
	}
	d.err = e
	return e
}

// parse tries to decode one record at the front of d.buf. n == 0 means more
// bytes are needed.
func (d *Decoder) parse() (Record, int, error) {
	b := d.buf
	bad := func(format string, args ...any) (Record, int, error) {
		return Record{}, 0, &CorruptError{Offset: d.off, Reason: fmt.Sprintf(format, args...)}
	}
	// Check what is already there as early as possible, so that garbage is
	// reported at once instead of waiting for a full header.
	m := min(len(b), len(Magic))
	if !bytes.Equal(b[:m], []byte(Magic)[:m]) {
		return bad("bad magic % x", b[:m])
	}
	if len(b) > 4 && b[4] != Version {
		return bad("unknown format version %d", b[4])
	}
	if len(b) > 5 && (b[5] == 0 || b[5] > MaxKind) {
		return bad("bad kind length %d", b[5])
	}
	if len(b) > 7 && (b[6] != 0 || b[7] != 0) {
		return bad("reserved bytes are % x, want zero", b[6:8])
	}
	if len(b) < HeaderSize {
		return Record{}, 0, nil
	}
	if seq := binary.BigEndian.Uint32(b[8:]); seq != d.seq {
		return bad("sequence number %d, want %d (records lost or reordered)", seq, d.seq)
	}
	plen := binary.BigEndian.Uint32(b[12:])
	if plen > MaxPayload {
		return bad("payload length %d exceeds %d", plen, MaxPayload)
	}
	klen := int(b[5])
	total := HeaderSize + klen + int(plen)
	if len(b) < total {
		return Record{}, 0, nil
	}
	kind := b[HeaderSize : HeaderSize+klen]
	payload := b[HeaderSize+klen : total]
	if want, got := binary.BigEndian.Uint32(b[16:]), checksum(b[:16], b[HeaderSize:total]); want != got {
		return bad("checksum %08x, computed %08x", want, got)
	}
	if !ValidKind(string(kind)) {
		return bad("invalid kind %q", kind)
	}
	if !json.Valid(payload) {
		return bad("payload of %q record is not valid JSON", kind)
	}
	rec := Record{
		Seq:     d.seq,
		Kind:    string(kind),
		Payload: append(json.RawMessage(nil), payload...),
		Offset:  d.off,
	}
	return rec, total, nil
}

// ReadAll decodes a complete stream. It returns every record decoded before
// the first problem, and the problem (a *CorruptError, a *TruncatedError or
// a read error).
func ReadAll(r io.Reader) ([]Record, error) {
	var d Decoder
	var all []Record
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			recs, ferr := d.Feed(buf[:n])
			all = append(all, recs...)
			if ferr != nil {
				return all, ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return all, d.Close()
		}
		if err != nil {
			return all, err
		}
	}
}
