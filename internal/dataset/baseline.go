package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/dataset/sketch"
)

// Baseline format identifiers. Version changes whenever a field changes meaning.
const (
	BaselineFormat  = "pipewarden.dataset.baseline"
	BaselineVersion = 1
	// MaxBaselineBytes bounds what DecodeBaseline reads.
	MaxBaselineBytes = 512 << 20
)

// Errors DecodeBaseline wraps.
var (
	ErrBaselineVersion = errors.New("unsupported baseline version")
	ErrBaselineCorrupt = errors.New("corrupted baseline")
)

// Baseline is the profile of a reference dataset that batches are checked against. It is
// written as JSON; docs/data.md documents every field.
type Baseline struct {
	Format      string       `json:"format"`
	Version     int          `json:"version"`
	Source      string       `json:"source,omitempty"`
	Digest      string       `json:"digest"`
	Rows        int64        `json:"rows"`
	Label       string       `json:"label,omitempty"`
	ID          string       `json:"id,omitempty"`
	Seed        uint64       `json:"seed"`
	Columns     []Column     `json:"columns"`
	Classes     []Class      `json:"classes,omitempty"`
	Sample      *Sample      `json:"sample,omitempty"`
	Calibration *Calibration `json:"calibration,omitempty"`
	// Checksum is sha256 of the baseline encoded with an empty checksum; it detects corruption.
	Checksum string `json:"checksum"`
}

// Column is the profile of one column.
type Column struct {
	Name     string           `json:"name"`
	Type     string           `json:"type"` // integer, number, boolean, string
	Count    int64            `json:"count"`
	Nulls    int64            `json:"nulls"`
	NullRate float64          `json:"null_rate"`
	Distinct float64          `json:"distinct"` // HyperLogLog estimate
	HLL      *sketch.HLL      `json:"hll,omitempty"`
	Numeric  *Numeric         `json:"numeric,omitempty"`
	Frequent *sketch.Frequent `json:"frequent,omitempty"`
	// Categorical marks columns compared by category counts (strings, booleans, small integers,
	// the label).
	Categorical bool `json:"categorical"`
}

// Numeric summarises a numeric column.
type Numeric struct {
	Min    float64     `json:"min"`
	Max    float64     `json:"max"`
	Mean   float64     `json:"mean"`
	Std    float64     `json:"std"`
	Sketch *sketch.KLL `json:"sketch"`
	// Edges are the histogram's inner bin edges (deciles); Hist the baseline proportion of each
	// of the len(Edges)+1 bins (x <= Edges[0], ..., x > Edges[last]).
	Edges []float64 `json:"edges"`
	Hist  []float64 `json:"hist"`
}

// Class holds the per-class statistics of numeric columns when a label is given.
type Class struct {
	Label   string             `json:"label"`
	Count   int64              `json:"count"`
	Moments map[string]Moments `json:"moments"`
}

// Moments are a column's count, mean and standard deviation.
type Moments struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// Sample is the seeded reservoir sample of rows kept for neighbour-based tests: numeric
// feature values (null where missing) and the label.
type Sample struct {
	Features []string `json:"features"`
	Rows     [][]Num  `json:"rows"`
	Labels   []string `json:"labels,omitempty"`
}

// Num is a float64 that encodes NaN as JSON null.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// checksumTail ends the compact encoding of a baseline whose checksum is empty: Checksum is the
// last field, so the checksum can be spliced in and checked without encoding twice.
var checksumTail = []byte(`,"checksum":""}`)

// Encode writes b as indented JSON with its checksum set.
func (b *Baseline) Encode(w io.Writer) error {
	b.Format, b.Version = BaselineFormat, BaselineVersion
	b.Checksum = ""
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode baseline: %w", err)
	}
	if !bytes.HasSuffix(raw, checksumTail) {
		return errors.New("encode baseline: checksum is not the last field")
	}
	b.Checksum = fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	out := append(raw[:len(raw)-len(checksumTail)], `,"checksum":"`+b.Checksum+`"}`...)
	var buf bytes.Buffer
	buf.Grow(len(out) + len(out)/4)
	if err := json.Indent(&buf, out, "", " "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// checksumOK reports whether want is the checksum of the baseline in raw. The fast path hashes
// the file's own compact form with the checksum blanked, which is byte for byte what Encode
// hashed; a file reformatted by another tool falls back to encoding the decoded baseline again.
func (b *Baseline) checksumOK(raw []byte, want string) bool {
	var compact bytes.Buffer
	compact.Grow(len(raw))
	if json.Compact(&compact, raw) == nil {
		tail := []byte(`,"checksum":"` + want + `"}`)
		if c := compact.Bytes(); bytes.HasSuffix(c, tail) {
			c = append(c[:len(c)-len(tail)], checksumTail...)
			if fmt.Sprintf("sha256:%x", sha256.Sum256(c)) == want {
				return true
			}
		}
	}
	b.Checksum = ""
	again, err := json.Marshal(b)
	b.Checksum = want
	return err == nil && fmt.Sprintf("sha256:%x", sha256.Sum256(again)) == want
}

// DecodeBaseline reads and verifies a baseline: format, version, checksum and internal
// consistency. Errors say what is wrong and wrap ErrBaselineVersion or ErrBaselineCorrupt.
func DecodeBaseline(r io.Reader) (*Baseline, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxBaselineBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxBaselineBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBaselineCorrupt, MaxBaselineBytes)
	}
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w: not valid JSON (%v)", ErrBaselineCorrupt, err)
	}
	if head.Format != BaselineFormat {
		return nil, fmt.Errorf("%w: format is %q, want %q (write one with 'pipewarden data profile')", ErrBaselineCorrupt, head.Format, BaselineFormat)
	}
	if head.Version != BaselineVersion {
		return nil, fmt.Errorf("%w %d (this pipewarden reads version %d; re-run 'pipewarden data profile')", ErrBaselineVersion, head.Version, BaselineVersion)
	}
	var b Baseline
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBaselineCorrupt, err)
	}
	if !b.checksumOK(raw, b.Checksum) {
		return nil, fmt.Errorf("%w: checksum mismatch (the file was edited or damaged)", ErrBaselineCorrupt)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBaselineCorrupt, err)
	}
	return &b, nil
}

func (b *Baseline) validate() error {
	if len(b.Columns) == 0 {
		return errors.New("no columns")
	}
	names := map[string]bool{}
	for _, c := range b.Columns {
		if c.Name == "" || names[c.Name] {
			return fmt.Errorf("empty or duplicate column name %q", c.Name)
		}
		names[c.Name] = true
		if n := c.Numeric; n != nil {
			if n.Sketch == nil || len(n.Hist) != len(n.Edges)+1 {
				return fmt.Errorf("column %q: numeric summary incomplete", c.Name)
			}
		}
	}
	if s := b.Sample; s != nil {
		for _, f := range s.Features {
			if c := b.column(f); c == nil || c.Numeric == nil {
				return fmt.Errorf("sample feature %q is not a numeric column", f)
			}
		}
		for i, r := range s.Rows {
			if len(r) != len(s.Features) {
				return fmt.Errorf("sample row %d has %d values for %d features", i, len(r), len(s.Features))
			}
		}
		if len(s.Labels) != 0 && len(s.Labels) != len(s.Rows) {
			return errors.New("sample labels and rows differ in length")
		}
	}
	return nil
}

// column returns the named column profile.
func (b *Baseline) column(name string) *Column {
	for i := range b.Columns {
		if b.Columns[i].Name == name {
			return &b.Columns[i]
		}
	}
	return nil
}
