package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The records file is a sequence of frames: a 4-byte big-endian payload length, a 4-byte
// CRC-32C of the payload, then the payload (one record's canonical JSON). The checksum finds
// torn writes on open; it is not a security measure (the Merkle tree and the signed
// checkpoints are).
const frameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the frame of payload, which is written in place after an 8-byte gap that
// the caller reserved: b[start:start+8] is the header, b[start+8:] the payload.
func sealFrame(b []byte, start int) {
	payload := b[start+frameHeader:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
}

// errTorn marks a frame cut short by the end of the file.
var errTorn = errors.New("record cut short by the end of the file")

// frameError is a frame that cannot be read: a bad length or checksum.
type frameError struct {
	Offset int64
	Reason string
	// Intact is true when the frame's extent is known (only its checksum failed), so reading can
	// go on with the next frame.
	Intact bool
}

func (e *frameError) Error() string { return fmt.Sprintf("record at byte %d: %s", e.Offset, e.Reason) }

// frameReader reads frames from a records file or bundle.
type frameReader struct {
	r   *bufio.Reader
	off int64 // offset of the next frame
	hdr [frameHeader]byte
	buf []byte
}

func newFrameReader(r io.Reader, off int64) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 1<<20), off: off}
}

// next returns the next payload (valid until the next call) and its frame offset. At the end it
// returns io.EOF; a partial frame at the end gives errTorn; a bad length a *frameError; a bad
// checksum a *frameError with Intact set, together with the payload.
func (fr *frameReader) next() ([]byte, int64, error) {
	off := fr.off
	n, err := io.ReadFull(fr.r, fr.hdr[:])
	if err == io.EOF {
		return nil, off, io.EOF
	}
	if err != nil {
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, off, errTorn
		}
		return nil, off, err
	}
	size := binary.BigEndian.Uint32(fr.hdr[:4])
	if size == 0 || size > MaxRecordSize {
		return nil, off, &frameError{Offset: off, Reason: fmt.Sprintf("invalid length %d", size)}
	}
	if cap(fr.buf) < int(size) {
		fr.buf = make([]byte, size)
	}
	fr.buf = fr.buf[:size]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return nil, off, errTorn
		}
		return nil, off, err
	}
	fr.off += frameHeader + int64(size)
	if crc32.Checksum(fr.buf, castagnoli) != binary.BigEndian.Uint32(fr.hdr[4:]) {
		return fr.buf, off, &frameError{Offset: off, Reason: "checksum mismatch", Intact: true}
	}
	return fr.buf, off, nil
}
