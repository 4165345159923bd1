package table

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// lineReader returns lines without their terminator, refusing any longer than max.
type lineReader struct {
	br   *bufio.Reader
	max  int
	line int64
	acc  []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, max+2), max: max}
}

// next returns the next line; the slice is valid until the next call.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	l.line++
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, &RowError{Line: l.line, Err: ErrLineTooBig}
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(b) > 0) {
		return nil, err
	}
	if len(b) > l.max+1 {
		return nil, &RowError{Line: l.line, Err: ErrLineTooBig}
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	return b, nil
}
