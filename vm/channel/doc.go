// Package channel defines the framed, checksummed record stream that carries
// results from the guest (cmd/tramp-guest) to the host over a virtio-serial
// port.
//
// Every record is self-delimiting and protected by a CRC32C:
//
//	offset  size  field
//	0       4     magic "TRMP"
//	4       1     format version (1)
//	5       1     kind length K, 1..MaxKind
//	6       2     reserved, zero
//	8       4     sequence number, big endian, 0 for the first record
//	12      4     payload length N, big endian, at most MaxPayload
//	16      4     CRC32C (Castagnoli) of bytes 0..15, the kind and the payload
//	20      K     kind, ASCII [a-z0-9_.-]
//	20+K    N     payload, a JSON value
//
// The Encoder is used by the guest and needs nothing but the standard
// library, so it builds for linux/amd64 and linux/arm64 with CGO off. The
// Decoder is push-style so that the host can feed it bytes as they appear in
// a growing file; it reports corruption with the byte offset where it was
// found and a truncated final record as a TruncatedError, keeping every
// record decoded before either.
package channel
