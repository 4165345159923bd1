package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
)

// LoadBaseline reads an endpoint's training baseline: a `pipewarden data profile` baseline
// (numeric columns other than the label, in file order, with its row sample), or a simple
// JSON {"features": [{"name", "mean", "std", "min", "max"}]}.
func LoadBaseline(path string) (*detect.Baseline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline %q: %w", path, err)
	}
	var probe struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("baseline %q: %w", path, err)
	}
	if probe.Format == dataset.BaselineFormat {
		db, err := dataset.DecodeBaseline(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("baseline %q: %w", path, err)
		}
		return FromDataset(db)
	}
	var simple struct {
		Features []struct {
			Name                string
			Mean, Std, Min, Max float64
		} `json:"features"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&simple); err != nil {
		return nil, fmt.Errorf("baseline %q: neither a pipewarden data profile baseline nor {\"features\": [...]}: %w", path, err)
	}
	if len(simple.Features) == 0 {
		return nil, fmt.Errorf("baseline %q: no features", path)
	}
	b := &detect.Baseline{}
	for i, f := range simple.Features {
		if !(f.Std >= 0) || f.Min > f.Max || math.IsNaN(f.Mean) {
			return nil, fmt.Errorf("baseline %q: feature %d (%s): need std >= 0 and min <= max", path, i, f.Name)
		}
		b.Names = append(b.Names, f.Name)
		b.Mean, b.Std = append(b.Mean, f.Mean), append(b.Std, f.Std)
		b.Min, b.Max = append(b.Min, f.Min), append(b.Max, f.Max)
	}
	return b, nil
}

// FromDataset converts a dataset baseline: its numeric, non-label, non-id columns become the
// features, and its row sample the nearest-neighbour reference.
func FromDataset(db *dataset.Baseline) (*detect.Baseline, error) {
	b := &detect.Baseline{}
	for _, c := range db.Columns {
		if c.Numeric == nil || c.Name == db.Label || c.Name == db.ID {
			continue
		}
		b.Names = append(b.Names, c.Name)
		b.Mean, b.Std = append(b.Mean, c.Numeric.Mean), append(b.Std, c.Numeric.Std)
		b.Min, b.Max = append(b.Min, c.Numeric.Min), append(b.Max, c.Numeric.Max)
	}
	if len(b.Names) == 0 {
		return nil, errors.New("baseline has no numeric feature columns")
	}
	if db.Sample != nil {
		idx := map[string]int{}
		for i, n := range db.Sample.Features {
			idx[n] = i
		}
	rows:
		for _, r := range db.Sample.Rows {
			row := make([]float64, len(b.Names))
			for j, n := range b.Names {
				i, ok := idx[n]
				if !ok || i >= len(r) || math.IsNaN(float64(r[i])) {
					continue rows
				}
				row[j] = float64(r[i])
			}
			b.Sample = append(b.Sample, row)
		}
	}
	return b, nil
}
