package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
)

// data is a labelled numeric dataset.
type data struct {
	names []string
	x     [][]float64
	y     []int
	k     int // classes
}

func loadCSV(path string) (*data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	d := &data{names: recs[0][:len(recs[0])-1]}
	for i, r := range recs[1:] {
		row := make([]float64, len(r)-1)
		for j := range row {
			if row[j], err = strconv.ParseFloat(r[j], 64); err != nil {
				return nil, fmt.Errorf("%s row %d: %w", path, i+2, err)
			}
		}
		lab, err := strconv.Atoi(r[len(r)-1])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: label: %w", path, i+2, err)
		}
		d.x, d.y = append(d.x, row), append(d.y, lab)
		d.k = max(d.k, lab+1)
	}
	return d, nil
}

// split shuffles with rng and keeps frac of the rows for training.
func (d *data) split(rng *rand.Rand, frac float64) (train, held *data) {
	idx := rng.Perm(len(d.x))
	n := int(frac * float64(len(idx)))
	train, held = &data{names: d.names, k: d.k}, &data{names: d.names, k: d.k}
	for i, j := range idx {
		t := train
		if i >= n {
			t = held
		}
		t.x, t.y = append(t.x, d.x[j]), append(t.y, d.y[j])
	}
	return train, held
}

// moments are per-feature mean, std, min and max.
type moments struct{ mean, std, min, max []float64 }

func momentsOf(x [][]float64) moments {
	d := len(x[0])
	m := moments{make([]float64, d), make([]float64, d), make([]float64, d), make([]float64, d)}
	for j := range d {
		m.min[j], m.max[j] = math.Inf(1), math.Inf(-1)
		for _, r := range x {
			m.mean[j] += r[j]
			m.min[j], m.max[j] = math.Min(m.min[j], r[j]), math.Max(m.max[j], r[j])
		}
		m.mean[j] /= float64(len(x))
		for _, r := range x {
			m.std[j] += (r[j] - m.mean[j]) * (r[j] - m.mean[j])
		}
		m.std[j] = math.Sqrt(m.std[j] / float64(len(x)-1))
		if m.std[j] == 0 {
			m.std[j] = 1
		}
	}
	return m
}

// softmax is multinomial logistic regression on standardised features: the served model, and
// the Jacobian attacker's substitute.
type softmax struct {
	m moments
	w [][]float64 // k × (d+1)
}

func trainSoftmax(x [][]float64, y []int, k int, m moments, epochs int) *softmax {
	d := len(m.mean)
	s := &softmax{m: m, w: make([][]float64, k)}
	for c := range s.w {
		s.w[c] = make([]float64, d+1)
	}
	z := make([]float64, d)
	p := make([]float64, k)
	for range epochs {
		for i, r := range x {
			s.standardise(r, z)
			s.probs(z, p)
			for c := range k {
				g := p[c]
				if c == y[i] {
					g--
				}
				for j := range d {
					s.w[c][j] -= 0.05 * (g*z[j] + 1e-3*s.w[c][j])
				}
				s.w[c][d] -= 0.05 * g
			}
		}
	}
	return s
}

func (s *softmax) standardise(x, z []float64) {
	for j := range z {
		z[j] = (x[j] - s.m.mean[j]) / s.m.std[j]
	}
}

func (s *softmax) probs(z, p []float64) {
	d := len(z)
	top := math.Inf(-1)
	for c, w := range s.w {
		v := w[d]
		for j, zj := range z {
			v += w[j] * zj
		}
		p[c] = v
		top = math.Max(top, v)
	}
	sum := 0.0
	for c := range p {
		p[c] = math.Exp(p[c] - top)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
}

func (s *softmax) predict(x []float64) (int, []float64) {
	z := make([]float64, len(x))
	p := make([]float64, len(s.w))
	s.standardise(x, z)
	s.probs(z, p)
	best := 0
	for c := range p {
		if p[c] > p[best] {
			best = c
		}
	}
	return best, p
}

// serve answers KServe v2 inference requests with class probabilities.
func (s *softmax) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Inputs []struct {
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	d := len(s.m.mean)
	in := req.Inputs[0].Data
	if len(in)%d != 0 || len(in) == 0 {
		http.Error(w, `{"error":"wrong shape"}`, http.StatusBadRequest)
		return
	}
	rows := len(in) / d
	out := make([]float64, 0, rows*len(s.w))
	for i := range rows {
		_, p := s.predict(in[i*d : (i+1)*d])
		out = append(out, p...)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"model_name": "m", "outputs": []any{map[string]any{
		"name": "probabilities", "shape": []int{rows, len(s.w)}, "datatype": "FP64", "data": out}}})
}
