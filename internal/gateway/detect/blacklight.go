package detect

import (
	"fmt"
	"math"
	"slices"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Blacklight (Li et al., 2022) adapted to tabular inputs: each standardised feature is
// quantised into Step-wide buckets at Rounds secret offsets; every window of Window consecutive
// features (cyclically) of every round is hashed with SipHash under the deployment's secret; the
// TopN largest hashes are the query's fingerprint. Queries that share most of their fingerprint
// are near-duplicates, which query-based attacks (boundary probing, perturbation search)
// produce in long runs and natural traffic rarely does. The index is global per endpoint, so a
// match against another client's query links the two clients.

type blEntry struct {
	client string
	fp     []uint64
}

type blIndex struct {
	entries []blEntry
	next    int
	byHash  map[uint64][]int32
	counts  map[int32]int
	offsets [][]float64 // per round, per feature
}

func newBLIndex(capacity int) *blIndex {
	if capacity <= 0 {
		capacity = 50000
	}
	return &blIndex{entries: make([]blEntry, 0, min(capacity, 4096)), byHash: map[uint64][]int32{}, counts: map[int32]int{}, next: 0}
}

type blClient struct {
	recent  ring
	matched int
}

const maxPostings = 64 // entries kept per hash: a hot hash cannot make lookups slow

func (e *Engine) blacklight(ep *endpointState, cs *clientState, z []float64) (*alarm, *alarm) {
	cfg := &e.cfg.Blacklight
	ix := ep.index
	fp := e.fingerprint(ix, z)
	if fp == nil {
		return nil, nil
	}
	clear(ix.counts)
	for _, h := range fp {
		for _, id := range ix.byHash[h] {
			ix.counts[id]++
		}
	}
	need := int(math.Ceil(cfg.Match * float64(len(fp))))
	matched := false
	var other string
	for id, c := range ix.counts {
		if c < need {
			continue
		}
		matched = true
		if o := ix.entries[id].client; o != cs.id {
			other = o
		}
	}
	ix.add(cs.id, fp, cfg.Index)

	if cs.bl.recent.v == nil {
		cs.bl.recent = newRing(cfg.Recent)
	}
	v := 0.0
	if matched {
		v = 1
		cs.bl.matched++
	}
	cs.bl.recent.add(v)
	var linkAlarm *alarm
	if other != "" {
		if cs.linked == nil {
			cs.linked = map[string]int{}
		}
		if len(cs.linked) < 100 || cs.linked[other] > 0 {
			cs.linked[other]++
		}
		if cs.linked[other] == cfg.LinkMin {
			linkAlarm = &alarm{
				rule: RuleLinked, detector: Blacklight, severity: finding.Medium,
				title:     fmt.Sprintf("Client sends near-duplicates of client %s's queries (%d matches): clients likely acting together", other, cfg.LinkMin),
				statistic: float64(cfg.LinkMin), threshold: float64(cfg.LinkMin),
				extra: map[string]any{"linked_clients": sortedKeys(cs.linked)},
				atlas: []string{"AML.T0024", "AML.T0043"}, owasp: []string{"ML05"}, conf: 0.6,
			}
		}
	}
	r := cs.bl.recent
	if !r.full {
		return nil, linkAlarm
	}
	rate := r.sum() / float64(r.len())
	if rate < cfg.Rate {
		return nil, linkAlarm
	}
	a := &alarm{
		rule: RuleQueryAttack, detector: Blacklight, severity: finding.High,
		title:     fmt.Sprintf("%.0f%% of the client's last %d queries are near-duplicates of earlier queries: query-based attack", 100*rate, r.len()),
		statistic: rate, threshold: cfg.Rate,
		extra: map[string]any{"matched_queries": cs.bl.matched, "window": r.len(), "fingerprint_hashes": len(fp),
			"linked_clients": sortedKeys(cs.linked)},
		atlas: []string{"AML.T0043", "AML.T0024"}, owasp: []string{"ML01", "ML05"}, conf: 0.8,
	}
	return a, linkAlarm
}

// fingerprint returns the query's top-N salted window hashes, or nil for a non-finite query.
func (e *Engine) fingerprint(ix *blIndex, z []float64) []uint64 {
	cfg := &e.cfg.Blacklight
	d := len(z)
	if len(ix.offsets) != cfg.Rounds || len(ix.offsets[0]) != d {
		// Offsets derive from the secret: an attacker cannot place queries on bucket edges.
		ix.offsets = make([][]float64, cfg.Rounds)
		for r := range ix.offsets {
			ix.offsets[r] = make([]float64, d)
			for j := range d {
				h := sipHash(e.k0, e.k1, []uint64{0xb1ac, uint64(r), uint64(j)})
				ix.offsets[r][j] = cfg.Step * float64(h>>11) / float64(1<<53)
			}
		}
	}
	q := make([]int64, d)
	w := min(cfg.Window, d)
	words := make([]uint64, w+1)
	fp := make([]uint64, 0, cfg.Rounds*d)
	for r := range cfg.Rounds {
		for j, v := range z {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil
			}
			q[j] = int64(math.Floor((v + ix.offsets[r][j]) / cfg.Step))
		}
		for s := range d {
			words[0] = uint64(r)<<32 | uint64(s)
			for k := range w {
				words[k+1] = uint64(q[(s+k)%d])
			}
			fp = append(fp, sipHash(e.k0, e.k1, words))
			if w == d {
				break // one window covers every feature
			}
		}
	}
	slices.Sort(fp)
	fp = slices.Compact(fp)
	slices.Reverse(fp)
	if len(fp) > cfg.TopN {
		fp = fp[:cfg.TopN]
	}
	return fp
}

func (ix *blIndex) add(client string, fp []uint64, capacity int) {
	var id int32
	if len(ix.entries) < capacity {
		id = int32(len(ix.entries))
		ix.entries = append(ix.entries, blEntry{})
	} else {
		id = int32(ix.next)
		ix.next = (ix.next + 1) % capacity
		for _, h := range ix.entries[id].fp { // evict the oldest query
			ps := ix.byHash[h]
			if i := slices.Index(ps, id); i >= 0 {
				ps = slices.Delete(ps, i, i+1)
			}
			if len(ps) == 0 {
				delete(ix.byHash, h)
			} else {
				ix.byHash[h] = ps
			}
		}
	}
	ix.entries[id] = blEntry{client: client, fp: fp}
	for _, h := range fp {
		ps := ix.byHash[h]
		if len(ps) >= maxPostings {
			ps = ps[1:]
		}
		ix.byHash[h] = append(ps, id)
	}
}
