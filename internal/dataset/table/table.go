// Package table reads tabular data files (CSV and TSV, JSON Lines, Parquet; CSV and JSON Lines
// also gzip-compressed) as a stream of rows of text fields, with hard limits on record size and
// column count so that hostile input cannot exhaust memory.
package table

import (
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Field is one cell: its text (numbers as their literal) and whether it is null (an empty CSV
// field, a JSON null or a missing key, a Parquet null).
type Field struct {
	B    []byte
	Null bool
}

// Reader yields rows. The returned slice and its bytes are only valid until the next call.
type Reader interface {
	Columns() []string
	Next() ([]Field, error) // io.EOF after the last row
}

// Options are the reader's limits and format choices; zero values take the defaults.
type Options struct {
	Format       string // csv, tsv, jsonl or parquet; "" picks by file extension
	Delimiter    byte   // CSV delimiter; 0 sniffs among , ; tab |
	MaxLineBytes int    // longest record; default 1 MiB
	MaxColumns   int    // default 4096
}

// Defaults for Options.
const (
	DefaultMaxLineBytes = 1 << 20
	DefaultMaxColumns   = 4096
)

// Sentinel errors callers may branch on.
var (
	ErrEmpty      = errors.New("empty file: no header row")
	ErrLineTooBig = errors.New("record longer than the line limit")
	ErrRagged     = errors.New("wrong number of fields")
)

// RowError locates a problem in the input.
type RowError struct {
	Line int64 // 1-based line (CSV/JSONL) or row (Parquet) number
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

func (o Options) withDefaults() Options {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxColumns <= 0 {
		o.MaxColumns = DefaultMaxColumns
	}
	return o
}

// File is an open table and the SHA-256 of the bytes read from disk so far.
type File struct {
	Reader
	Format string
	f      *os.File
	gz     *gzip.Reader
	sum    hash.Hash
	digest func() string
}

// Close releases the file.
func (f *File) Close() error {
	if f.gz != nil {
		f.gz.Close()
	}
	return f.f.Close()
}

// Digest is "sha256:<hex>" of the file's bytes; call it after reading to the end.
func (f *File) Digest() string { return f.digest() }

// DetectFormat names the format of path from its extension (a trailing .gz is ignored).
func DetectFormat(path string) string {
	p := strings.ToLower(strings.TrimSuffix(strings.ToLower(path), ".gz"))
	switch filepath.Ext(p) {
	case ".tsv", ".tab":
		return "tsv"
	case ".jsonl", ".ndjson", ".json":
		return "jsonl"
	case ".parquet", ".pq":
		return "parquet"
	}
	return "csv"
}

// Open opens path for reading as a table.
func Open(path string, opts Options) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return OpenFile(f, path, opts)
}

// OpenFile reads an already open file as a table (for example one opened through an os.Root);
// name picks the format and gzip by its extension. The table owns f and closes it, also when
// OpenFile fails.
func OpenFile(f *os.File, name string, opts Options) (*File, error) {
	opts = opts.withDefaults()
	format := opts.Format
	if format == "" {
		format = DetectFormat(name)
	}
	tf := &File{f: f, Format: format, sum: sha256.New()}
	tf.digest = func() string { return fmt.Sprintf("sha256:%x", tf.sum.Sum(nil)) }
	if format == "parquet" {
		r, err := newParquet(f, tf.sum)
		if err != nil {
			f.Close()
			return nil, err
		}
		tf.Reader = r
		return tf, nil
	}
	var src io.Reader = io.TeeReader(f, tf.sum)
	if strings.HasSuffix(strings.ToLower(name), ".gz") {
		gz, err := gzip.NewReader(src)
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, ErrEmpty
			}
			return nil, fmt.Errorf("gzip: %w", err)
		}
		tf.gz = gz
		src = gz
	}
	r, err := NewReader(src, format, opts)
	if err != nil {
		tf.Close()
		return nil, err
	}
	tf.Reader = r
	return tf, nil
}

// NewReader reads a stream in the named text format (csv, tsv or jsonl).
func NewReader(r io.Reader, format string, opts Options) (Reader, error) {
	opts = opts.withDefaults()
	switch format {
	case "csv":
		return newCSV(r, opts)
	case "tsv":
		opts.Delimiter = '\t'
		return newCSV(r, opts)
	case "jsonl":
		return newJSONL(r, opts)
	}
	return nil, fmt.Errorf("unknown format %q (want csv, tsv, jsonl or parquet)", format)
}
