package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/pipewarden/pipewarden/internal/dataset/sketch"
	"github.com/pipewarden/pipewarden/internal/dataset/stattest"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// RowSource is what Check reads: a table.Reader, or inline records (see Records).
type RowSource interface {
	Columns() []string
	Next() ([]table.Field, error)
}

// CheckOptions configure Check; zero values take the defaults.
type CheckOptions struct {
	Subject     string  // dataset name in findings; default the baseline's source
	Label       string  // label column; default the baseline's
	Segment     string  // report per value of this column as well as overall
	Alpha       float64 // false discovery rate for drift tests (BH); default 0.01
	IndicatorP  float64 // family-wise p-value a manipulation indicator must reach (Bonferroni); default 0.0001
	SampleSize  int     // batch rows kept for neighbour tests; default 2000
	MaxSegments int     // default 64; further values are pooled into "(other)"
	Seed        uint64  // default 1
	Now         func() time.Time
}

func (o *CheckOptions) defaults(b *Baseline) {
	if o.Subject == "" {
		o.Subject = b.Source
	}
	if o.Label == "" {
		o.Label = b.Label
	}
	if o.Alpha == 0 {
		o.Alpha = 0.01
	}
	if o.IndicatorP == 0 {
		o.IndicatorP = 1e-4
	}
	if o.SampleSize == 0 {
		o.SampleSize = 2000
	}
	if o.MaxSegments == 0 {
		o.MaxSegments = 64
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// colRef is what Check needs of one baseline column.
type colRef struct {
	col     *Column
	batch   int // index in the batch, -1 when missing
	numeric bool
	ks      *stattest.KSRef
	feature int // index in the sample's features, -1 otherwise
	lo, hi  float64
}

type colAcc struct {
	nulls, nonNumeric, outRange int64
	mom                         moments
	ks                          *stattest.KSCounter
	hist                        []int64
	cats                        map[string]int64
}

type sampledRow struct {
	vals  []float64
	label string
}

type acc struct {
	cur     *block // numeric values waiting for the flusher
	pending int    // rows in cur
	rows    int64
	cols    []colAcc
	labels  map[string]int64
	classes map[string][]moments
	res     *sketch.Reservoir[sampledRow]
	ids     map[uint64]struct{}
	dupIDs  int64
}

type checker struct {
	b        *Baseline
	opts     CheckOptions
	refs     []colRef
	batchCol []string
	flush    flusher
	labelIdx int // in batch
	idIdx    int
	segIdx   int
	feats    []int // baseline column index per sample feature
	family   int   // accumulators judged (overall + segments): the Bonferroni family of indicator tests
}

// Check reads every row of src and judges it against b. It returns an error only when src
// cannot be read to the end (the caller must not report such a batch clean).
func Check(b *Baseline, src RowSource, opts CheckOptions) ([]finding.Finding, error) {
	opts.defaults(b)
	c := &checker{b: b, opts: opts, batchCol: src.Columns(), labelIdx: -1, idIdx: -1, segIdx: -1}
	index := map[string]int{}
	for i, n := range c.batchCol {
		index[n] = i
	}
	if opts.Segment != "" {
		i, ok := index[opts.Segment]
		if !ok {
			return nil, fmt.Errorf("segment column %q not found (columns: %v)", opts.Segment, c.batchCol)
		}
		c.segIdx = i
	}
	if i, ok := index[opts.Label]; ok && opts.Label != "" {
		c.labelIdx = i
	}
	if i, ok := index[b.ID]; ok && b.ID != "" {
		c.idIdx = i
	}
	featIdx := map[string]int{}
	if b.Sample != nil {
		for j, f := range b.Sample.Features {
			featIdx[f] = j
		}
		c.feats = make([]int, len(b.Sample.Features))
	}
	for ci := range b.Columns {
		col := &b.Columns[ci]
		r := colRef{col: col, batch: -1, feature: -1}
		if i, ok := index[col.Name]; ok {
			r.batch = i
		}
		if j, ok := featIdx[col.Name]; ok {
			r.feature = j
			c.feats[j] = ci
		}
		if n := col.Numeric; n != nil {
			r.numeric = true
			r.ks = stattest.NewKSRef(c.reference(col, r.feature))
			margin := 0.1 * (n.Max - n.Min)
			if margin == 0 {
				margin = 0.1*math.Abs(n.Max) + 1e-9
			}
			r.lo, r.hi = n.Min-margin, n.Max+margin
		}
		c.refs = append(c.refs, r)
	}
	c.startFlusher()
	defer c.stopFlusher()
	overall := c.newAcc(0)
	segs := map[string]*acc{}
	var fs []finding.Finding
	for {
		row, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		c.add(overall, row)
		if c.segIdx >= 0 {
			key := string(row[c.segIdx].B)
			if row[c.segIdx].Null {
				key = "(null)"
			}
			a := segs[key]
			if a == nil {
				if len(segs) >= opts.MaxSegments {
					key = "(other)"
					a = segs[key]
				}
				if a == nil {
					a = c.newAcc(uint64(len(segs) + 1))
					segs[key] = a
				}
			}
			c.add(a, row)
		}
	}
	c.submit(overall)
	for _, a := range segs {
		c.submit(a)
	}
	c.stopFlusher()
	if overall.rows == 0 {
		return nil, errors.New("no data rows after the header")
	}
	keys := make([]string, 0, len(segs))
	for k := range segs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c.family = 1
	if len(keys) > 1 {
		c.family += len(keys)
	}
	fs = append(fs, c.schema()...)
	fs = append(fs, c.judge(overall, "")...)
	if len(keys) > 1 {
		for _, k := range keys {
			fs = append(fs, c.judge(segs[k], k)...)
		}
	}
	now := opts.Now().UTC()
	for i := range fs {
		fs[i].Time = now
	}
	return fs, nil
}

// reference is the sorted sample a column's KS test compares against: the baseline sample's
// values when the column is a sampled feature, else 1000 quantiles of its sketch.
func (c *checker) reference(col *Column, feature int) []float64 {
	var ref []float64
	if feature >= 0 && c.b.Sample != nil {
		for _, r := range c.b.Sample.Rows {
			if v := float64(r[feature]); !math.IsNaN(v) {
				ref = append(ref, v)
			}
		}
	}
	if len(ref) < 20 {
		qs := make([]float64, 1000)
		for i := range qs {
			qs[i] = (float64(i) + 0.5) / 1000
		}
		ref = col.Numeric.Sketch.Quantiles(qs)
	}
	stattest.SortFloats(ref)
	return ref
}

func (c *checker) newAcc(salt uint64) *acc {
	a := &acc{cols: make([]colAcc, len(c.refs)), labels: map[string]int64{}, classes: map[string][]moments{},
		res: sketch.NewReservoir[sampledRow](c.opts.SampleSize, c.opts.Seed+salt)}
	for i, r := range c.refs {
		if r.numeric {
			a.cols[i].ks = r.ks.NewCounter()
			a.cols[i].hist = make([]int64, len(r.col.Numeric.Edges)+1)
		}
		if r.col.Categorical {
			a.cols[i].cats = map[string]int64{}
		}
	}
	if c.idIdx >= 0 {
		a.ids = map[uint64]struct{}{}
	}
	a.cur = c.getBlock(a)
	return a
}

const maxTrackedCategories = 10000

func (c *checker) add(a *acc, row []table.Field) {
	a.rows++
	var vals []float64
	slot := -1
	if c.b.Sample != nil {
		if slot = a.res.Slot(); slot >= 0 {
			s := &a.res.Items[slot]
			if s.vals == nil {
				s.vals = make([]float64, len(c.feats))
			}
			vals = s.vals
			for j := range vals {
				vals[j] = math.NaN()
			}
		}
	}
	label := ""
	if c.labelIdx >= 0 {
		label = string(row[c.labelIdx].B)
		a.labels[label]++
	}
	var cm []moments
	if label != "" && len(c.b.Classes) > 0 {
		cm = a.classes[label]
		if cm == nil && len(a.classes) < 1000 {
			cm = make([]moments, len(c.refs))
			a.classes[label] = cm
		}
	}
	for i := range c.refs {
		r := &c.refs[i]
		if r.batch < 0 {
			continue
		}
		f := row[r.batch]
		ca := &a.cols[i]
		k, v := classify(f)
		if k == kNull {
			ca.nulls++
			continue
		}
		if ca.cats != nil && len(ca.cats) < maxTrackedCategories {
			ca.cats[string(f.B)]++
		} else if ca.cats != nil {
			if _, ok := ca.cats[string(f.B)]; ok {
				ca.cats[string(f.B)]++
			}
		}
		if !r.numeric {
			continue
		}
		if k != kInt && k != kFloat {
			ca.nonNumeric++
			continue
		}
		ca.mom.add(v)
		a.cur.vals[i] = append(a.cur.vals[i], v)
		if v < r.lo || v > r.hi {
			ca.outRange++
		}
		if cm != nil {
			cm[i].add(v)
		}
		if vals != nil && r.feature >= 0 {
			vals[r.feature] = v
		}
	}
	if slot >= 0 {
		a.res.Items[slot].label = label
	}
	if a.pending++; a.pending == blockRows {
		c.submit(a)
	}
	if a.ids != nil && !row[c.idIdx].Null {
		h := sketch.HashString(string(row[c.idIdx].B))
		if _, dup := a.ids[h]; dup {
			a.dupIDs++
		} else {
			a.ids[h] = struct{}{}
		}
	}
}

func histBin(edges []float64, v float64) int {
	lo, hi := 0, len(edges)
	for lo < hi {
		m := (lo + hi) / 2
		if v <= edges[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
