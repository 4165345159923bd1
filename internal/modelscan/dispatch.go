package modelscan

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// source is content to scan: a file, an archive member or a decompressed stream.
type source struct {
	name string      // path or member name; only ever makes the scan stricter
	ra   io.ReaderAt // random access when the bytes are stored as they are
	size int64       // bytes, -1 when unknown (a compressed stream)
	open func() (io.ReadCloser, error)
}

func (s *source) stream() (io.ReadCloser, error) {
	if s.ra != nil {
		return io.NopCloser(io.NewSectionReader(s.ra, 0, s.size)), nil
	}
	return s.open()
}

func (s *source) head(n int) ([]byte, error) {
	if s.ra != nil {
		if s.size < int64(n) {
			n = int(s.size)
		}
		b := make([]byte, n)
		m, err := s.ra.ReadAt(b, 0)
		if m == n {
			return b, nil
		}
		return b[:m], err
	}
	rc, err := s.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(rc, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:m], err
}

// modelNames are extensions that say a file is meant to be a model: content we cannot
// recognise under such a name is inconclusive rather than skipped.
var modelNames = map[string]bool{".pt": true, ".pth": true, ".bin": true, ".pkl": true, ".pickle": true,
	".ckpt": true, ".joblib": true, ".jbl": true, ".npy": true, ".npz": true, ".h5": true, ".hdf5": true,
	".keras": true, ".pb": true, ".onnx": true, ".safetensors": true, ".gguf": true, ".model": true,
	".sav": true, ".mar": true, ".dill": true, ".pkl.gz": true, ".tflite": true, ".mlmodel": true, ".nemo": true}

func modelName(name string) bool {
	return modelNames[strings.ToLower(filepath.Ext(name))]
}

// scanTop scans a top-level file and returns its format, or "" when it is not a format we
// analyse and nothing asked for it (a README found while walking a directory).
func (j *job) scanTop(src *source, explicit bool) string {
	return j.scan(src, 0, explicit || modelName(src.name))
}

// scan dispatches on content. strict makes unrecognised content inconclusive.
func (j *job) scan(src *source, depth int, strict bool) string {
	if depth > j.s.lim.MaxDepth {
		j.inconclusive("nested content", limitErr("nesting deeper than %d", j.s.lim.MaxDepth))
		return "nested"
	}
	if err := j.checkTime(); err != nil {
		j.inconclusive("content", err)
		return "unknown"
	}
	head, err := src.head(4096)
	if err != nil {
		j.inconclusive("content", err)
		return "unknown"
	}
	format := j.dispatch(src, head, depth, strict)
	if src.ra != nil && !strings.HasPrefix(format, "zip") && src.size > 22 {
		// A ZIP directory at the end of something that does not start as a ZIP: a polyglot.
		j.zipPolyglot(src, depth)
	}
	if format == "" && strict {
		j.inconclusive("file", fmt.Errorf("unrecognised content (%s) under a model file name", describeHead(head)))
		return "unknown"
	}
	return format
}

func describeHead(h []byte) string {
	if len(h) == 0 {
		return "empty"
	}
	if len(h) > 8 {
		h = h[:8]
	}
	return fmt.Sprintf("starts % x", h)
}

func (j *job) dispatch(src *source, head []byte, depth int, strict bool) string {
	switch {
	case len(head) == 0:
		if strict {
			j.inconclusive("file", fmt.Errorf("empty"))
		}
		return "empty"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return j.scanZip(src, depth)
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		j.scanNpy(src, depth)
		return "numpy"
	case bytes.HasPrefix(head, []byte("\x89HDF\r\n\x1a\n")):
		j.scanHDF5(src)
		return "hdf5"
	case bytes.HasPrefix(head, []byte("GGUF")):
		j.scanGGUF(src)
		return "gguf"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return j.scanCompressed(src, depth, "gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) })
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9':
		return j.scanCompressed(src, depth, "bzip2", func(r io.Reader) (io.Reader, error) { return bzip2.NewReader(r), nil })
	case len(head) >= 2 && head[0] == 0x78 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0:
		return j.scanCompressed(src, depth, "zlib", func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) })
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")), bytes.HasPrefix(head, []byte{0x04, 0x22, 0x4d, 0x18}),
		bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}), bytes.HasPrefix(head, []byte{0x5d, 0x00, 0x00}),
		bytes.HasPrefix(head, []byte("ZF0x")):
		j.inconclusive("compressed content", fmt.Errorf("compression format not supported (%s)", describeHead(head)))
		j.carvePickles(src, depth)
		return "compressed"
	case bytes.HasPrefix(head, []byte("7z\xbc\xaf\x27\x1c")), bytes.HasPrefix(head, []byte("Rar!\x1a\x07")):
		j.add(RuleUnsupportedArchive, finding.High, "archive format not supported", map[string]any{"magic": describeHead(head)})
		j.inconclusive("archive", fmt.Errorf("archive format not supported (%s)", describeHead(head)))
		j.carvePickles(src, depth)
		return "archive"
	case len(head) > 262 && bytes.Equal(head[257:262], []byte("ustar")):
		j.scanTar(src, depth)
		return "tar"
	case looksSafetensors(head, src.size):
		j.scanSafetensors(src)
		return "safetensors"
	}
	if f := j.scanProtobuf(src, head); f != "" {
		return f
	}
	if looksKerasJSON(head) {
		j.scanKerasJSON(src)
		return "keras-config"
	}
	if isOpcode(head[0]) {
		rc, err := src.stream()
		if err != nil {
			j.inconclusive("content", err)
			return "unknown"
		}
		defer rc.Close()
		if j.scanPickleStream(newByteReader(rc, src.size), strict || head[0] == opProto, depth) {
			return "pickle"
		}
	}
	return ""
}

func looksSafetensors(head []byte, size int64) bool {
	if len(head) < 10 || head[8] != '{' {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	// A JSON object right after the length: safetensors, whatever the length claims (the
	// header check reports a wrong one).
	return size < 0 || n <= uint64(size-8) || head[9] == '"' || head[9] == '}'

}

// scanCompressed scans a whole-file compressed stream (joblib writes zlib, gzip, bz2 ...).
func (j *job) scanCompressed(src *source, depth int, kind string, wrap func(io.Reader) (io.Reader, error)) string {
	inner := &source{name: strings.TrimSuffix(src.name, filepath.Ext(src.name)), size: -1, open: func() (io.ReadCloser, error) {
		rc, err := src.stream()
		if err != nil {
			return nil, err
		}
		zr, err := wrap(rc)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		lim := j.s.lim.MaxMemberBytes
		if src.size > 0 && src.size*j.s.lim.MaxRatio < lim {
			lim = src.size * j.s.lim.MaxRatio
		}
		return struct {
			io.Reader
			io.Closer
		}{&limitReader{r: zr, n: lim}, rc}, nil
	}}
	j.push("(" + kind + ")")
	defer j.pop()
	f := j.scan(inner, depth+1, true)
	return kind + "+" + f
}

// limitReader fails with a limit error instead of silently stopping at n bytes.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, limitErr("decompressed size or ratio over the limit")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// carvePickles looks for pickle streams inside content we cannot open (a 7z that stores its
// member uncompressed), so that known payloads are named even when the container is not.
func (j *job) carvePickles(src *source, depth int) {
	if src.ra == nil || src.size > 64<<20 {
		return
	}
	b := make([]byte, src.size)
	if _, err := src.ra.ReadAt(b, 0); err != nil && err != io.EOF {
		return
	}
	for i := 0; i+2 < len(b); i++ {
		if b[i] != opProto || b[i+1] < 2 || b[i+1] > 5 {
			continue
		}
		sub := &job{s: j.s, ctx: j.ctx, path: j.path, deadline: j.deadline, byKey: map[string]*finding.Finding{}, now: j.now}
		w := newPickleWalker(sub, newByteReader(bytes.NewReader(b[i:]), int64(len(b)-i)), depth+1)
		_, err := w.walkOne()
		sawCode := w.sawCode
		w.release()
		if err == nil && sawCode {
			j.push(fmt.Sprintf("(embedded pickle at %d)", i))
			w := newPickleWalker(j, newByteReader(bytes.NewReader(b[i:]), int64(len(b)-i)), depth+1)
			_, _ = w.walkOne()
			w.release()
			j.pop()
		}
	}
}
