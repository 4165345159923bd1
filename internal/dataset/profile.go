package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/pipewarden/pipewarden/internal/dataset/sketch"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// ProfileOptions configure Profile; zero values take the defaults.
type ProfileOptions struct {
	Label      string // label column, for label distribution, per-class statistics and label-noise calibration
	ID         string // id column, excluded from features
	SampleSize int    // rows kept for neighbour tests; default 5000; negative disables (sensitive data)
	Seed       uint64 // seeds the reservoir, sketches and calibration; default 1
	Source     string // recorded in the baseline
	Digest     func() string
}

// Defaults.
const (
	DefaultSampleSize = 5000
	kllK              = 200
	frequentK         = 64
	maxCategories     = 20 // integer columns with at most this many values are categorical
	histBins          = 10
)

type colProfile struct {
	nulls, nNum, nInt, nBool, nStr int64
	mom                            moments
	kll                            *sketch.KLL
	hll                            *sketch.HLL
	freq                           *sketch.Frequent
	freqOff                        bool
}

// Profile reads every row of r and builds its baseline.
func Profile(r table.Reader, opts ProfileOptions) (*Baseline, error) {
	if opts.SampleSize == 0 {
		opts.SampleSize = DefaultSampleSize
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	cols := slices.Clone(r.Columns())
	labelIdx, idIdx := -1, -1
	for i, c := range cols {
		if c == opts.Label {
			labelIdx = i
		}
		if c == opts.ID {
			idIdx = i
		}
	}
	if opts.Label != "" && labelIdx < 0 {
		return nil, fmt.Errorf("label column %q not found (columns: %v)", opts.Label, cols)
	}
	if opts.ID != "" && idIdx < 0 {
		return nil, fmt.Errorf("id column %q not found (columns: %v)", opts.ID, cols)
	}
	ps := make([]colProfile, len(cols))
	for i := range ps {
		ps[i] = colProfile{kll: sketch.NewKLL(kllK, opts.Seed+uint64(i)), hll: sketch.NewHLL(), freq: sketch.NewFrequent(frequentK)}
	}
	type sampled struct {
		vals  []float64
		label string
	}
	res := sketch.NewReservoir[sampled](opts.SampleSize, opts.Seed)
	classes := map[string][]moments{}
	var rows int64
	vals := make([]float64, len(cols))
	for {
		fs, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rows++
		for i, f := range fs {
			p := &ps[i]
			k, v := classify(f)
			vals[i] = v
			switch k {
			case kNull:
				p.nulls++
				continue
			case kInt:
				p.nInt++
				p.nNum++
			case kFloat:
				p.nNum++
			case kBool:
				p.nBool++
			case kString:
				p.nStr++
			}
			if k == kInt || k == kFloat {
				p.mom.add(v)
				p.kll.Add(v)
				p.hll.AddHash(sketch.HashFloat(v))
			} else {
				p.hll.AddHash(sketch.HashString(string(f.B)))
			}
			// High-cardinality numeric columns stop feeding the frequent-values counter: it
			// would cost a scan per value and says nothing about a continuous column.
			if !p.freqOff {
				if _, ok := p.freq.Counts[string(f.B)]; ok || len(p.freq.Counts) < frequentK || k == kString || k == kBool || i == labelIdx {
					p.freq.Add(string(f.B))
				} else {
					p.freqOff = true
					p.freq.N++ // keeps Exact() false
				}
			}
		}
		label := ""
		if labelIdx >= 0 {
			label = string(fs[labelIdx].B)
			m := classes[label]
			if m == nil {
				if len(classes) >= 1000 {
					return nil, fmt.Errorf("label column %q has more than 1000 distinct values; is it the right column?", opts.Label)
				}
				m = make([]moments, len(cols))
				classes[label] = m
			}
			for i, v := range vals {
				if !math.IsNaN(v) {
					m[i].add(v)
				}
			}
		}
		if slot := res.Slot(); slot >= 0 {
			s := &res.Items[slot]
			s.vals = append(s.vals[:0], vals...)
			s.label = label
		}
	}
	if rows == 0 {
		return nil, errors.New("no data rows after the header")
	}
	b := &Baseline{Format: BaselineFormat, Version: BaselineVersion, Rows: rows, Label: opts.Label,
		ID: opts.ID, Seed: opts.Seed, Source: opts.Source}
	if opts.Digest != nil {
		b.Digest = opts.Digest()
	}
	var features []int
	for i, name := range cols {
		p := &ps[i]
		c := Column{Name: name, Count: rows, Nulls: p.nulls, NullRate: float64(p.nulls) / float64(rows),
			Distinct: math.Round(p.hll.Estimate()), HLL: p.hll, Frequent: p.freq}
		nonNull := rows - p.nulls
		switch {
		case nonNull == 0:
			c.Type = "string"
		case p.nNum == nonNull && p.nInt == nonNull:
			c.Type = "integer"
		case p.nNum == nonNull:
			c.Type = "number"
		case p.nBool == nonNull:
			c.Type = "boolean"
		default:
			c.Type = "string"
		}
		if c.Type == "integer" || c.Type == "number" {
			c.Numeric = numericSummary(p)
			if i != labelIdx && i != idIdx {
				features = append(features, i)
			}
		}
		c.Categorical = i == labelIdx || c.Type == "string" || c.Type == "boolean" ||
			(c.Type == "integer" && p.freq.Exact() && len(p.freq.Counts) <= maxCategories)
		if i == idIdx {
			c.Categorical = false
		}
		b.Columns = append(b.Columns, c)
	}
	if labelIdx >= 0 {
		labels := make([]string, 0, len(classes))
		for l := range classes {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for _, l := range labels {
			cl := Class{Label: l, Moments: map[string]Moments{}}
			for _, fi := range features {
				m := classes[l][fi]
				cl.Moments[cols[fi]] = m.out()
			}
			cl.Count = ps[labelIdx].freq.Counts[l]
			b.Classes = append(b.Classes, cl)
		}
	}
	if len(res.Items) > 0 && len(features) > 0 {
		s := &Sample{}
		for _, fi := range features {
			s.Features = append(s.Features, cols[fi])
		}
		for _, it := range res.Items {
			row := make([]Num, len(features))
			for j, fi := range features {
				row[j] = Num(it.vals[fi])
			}
			s.Rows = append(s.Rows, row)
			if labelIdx >= 0 {
				s.Labels = append(s.Labels, it.label)
			}
		}
		b.Sample = s
		b.Calibration = calibrate(b, opts.Seed)
	}
	return b, nil
}

func numericSummary(p *colProfile) *Numeric {
	n := &Numeric{Min: p.kll.Min, Max: p.kll.Max, Mean: p.mom.mean, Std: p.mom.std(), Sketch: p.kll}
	qs := make([]float64, histBins-1)
	for i := range qs {
		qs[i] = float64(i+1) / histBins
	}
	for _, e := range p.kll.Quantiles(qs) {
		if len(n.Edges) == 0 || e > n.Edges[len(n.Edges)-1] {
			n.Edges = append(n.Edges, e)
		}
	}
	prev := 0.0
	for _, e := range n.Edges {
		c := p.kll.CDF(e)
		n.Hist = append(n.Hist, c-prev)
		prev = c
	}
	n.Hist = append(n.Hist, 1-prev)
	return n
}
