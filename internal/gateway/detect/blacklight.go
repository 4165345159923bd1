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
// TopN largest hashes are the query's fingerprint. Two queries sharing at least Match of their
// fingerprints are near-duplicates. Query-based attacks (boundary probing, perturbation search)
// send long runs of near-duplicates of the same few points; natural traffic, even traffic that
// re-scores the same records, spreads over many points. So the statistic is, for each query, how
// many of the client's last History queries it matches, averaged over the last Recent queries;
// the client alarms at MinMatches. A global index per endpoint links clients whose queries match
// each other's.

type blEntry struct {
	client string
	fp     []uint64
}

type blIndex struct {
	entries []blEntry
	next    int
	byHash  map[uint64][]int32
	cand    []int32     // scratch: candidate entries of one lookup
	offsets [][]float64 // per round, per feature
}

func newBLIndex(capacity int) *blIndex {
	return &blIndex{entries: make([]blEntry, 0, min(capacity, 4096)), byHash: map[uint64][]int32{}}
}

type blClient struct {
	history [][]uint64 // the client's last fingerprints
	next    int
	recent  ring // matches per query
	seen    int
}

const maxPostings = 8 // index entries kept per hash, for linking: a hot hash cannot make lookups slow

func (e *Engine) blacklight(ep *endpointState, cs *clientState, z []float64) (*alarm, *alarm) {
	cfg := &e.cfg.Blacklight
	fp := e.fingerprint(ep.index, z)
	if fp == nil {
		return nil, nil
	}
	need := int(math.Ceil(cfg.Match * float64(len(fp))))
	b := &cs.bl
	if b.recent.v == nil {
		b.recent = newRing(cfg.Recent)
	}
	matches := 0
	for _, h := range b.history {
		if shared(fp, h, need) >= need {
			matches++
		}
	}
	if len(b.history) < cfg.History {
		b.history = append(b.history, fp)
	} else {
		b.history[b.next] = fp
		b.next = (b.next + 1) % cfg.History
	}
	b.recent.add(float64(matches))
	b.seen++
	score := b.recent.sum() / float64(b.recent.len())
	// Clients that re-score the same records share near-duplicates naturally: a link is only
	// worth a finding when the client itself already looks like a query-based attack.
	linkAlarm := e.link(ep.index, cs, fp, need, score >= 0.75*cfg.MinMatches)
	if !b.recent.full {
		return nil, linkAlarm
	}
	if score < cfg.MinMatches {
		return nil, linkAlarm
	}
	a := &alarm{
		rule: RuleQueryAttack, detector: Blacklight, severity: finding.High,
		title:     fmt.Sprintf("Each recent query near-duplicates %.1f of the client's previous %d on average: query-based attack", score, len(b.history)),
		statistic: score, threshold: cfg.MinMatches,
		extra: map[string]any{"window": b.recent.len(), "history": len(b.history), "fingerprint_hashes": len(fp),
			"match_hashes": need, "linked_clients": sortedKeys(cs.linked)},
		atlas: []string{"AML.T0043", "AML.T0024"}, owasp: []string{"ML01", "ML05"}, conf: 0.8,
	}
	return a, linkAlarm
}

// shared counts the hashes two fingerprints (sorted descending) have in common, stopping early
// once need is reached or out of reach.
func shared(a, b []uint64, need int) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) && n < need && n+min(len(a)-i, len(b)-j) >= need {
		switch {
		case a[i] == b[j]:
			n++
			i++
			j++
		case a[i] > b[j]:
			i++
		default:
			j++
		}
	}
	return n
}

// link looks the fingerprint up in the endpoint's index and reports a client whose queries
// keep matching another client's.
func (e *Engine) link(ix *blIndex, cs *clientState, fp []uint64, need int, suspect bool) *alarm {
	cfg := &e.cfg.Blacklight
	ix.cand = ix.cand[:0]
	for _, h := range fp {
		for _, id := range ix.byHash[h] {
			if ix.entries[id].client != cs.id {
				ix.cand = append(ix.cand, id)
			}
		}
	}
	slices.Sort(ix.cand)
	other := ""
	for i := 0; i < len(ix.cand); {
		j := i
		for j < len(ix.cand) && ix.cand[j] == ix.cand[i] {
			j++
		}
		if j-i >= need {
			other = ix.entries[ix.cand[i]].client
			break
		}
		i = j
	}
	ix.add(cs.id, fp, cfg.Index)
	if other == "" {
		return nil
	}
	if cs.linked == nil {
		cs.linked = map[string]int{}
	}
	if len(cs.linked) >= 100 && cs.linked[other] == 0 {
		return nil
	}
	cs.linked[other]++
	if cs.linked[other] < cfg.LinkMin || !suspect || cs.linkReported {
		return nil
	}
	cs.linkReported = true
	return &alarm{
		rule: RuleLinked, detector: Blacklight, severity: finding.Medium,
		title:     fmt.Sprintf("Client sends near-duplicates of client %s's queries (%d matches): clients likely acting together", other, cfg.LinkMin),
		statistic: float64(cfg.LinkMin), threshold: float64(cfg.LinkMin),
		extra: map[string]any{"linked_clients": sortedKeys(cs.linked)},
		atlas: []string{"AML.T0024", "AML.T0043"}, owasp: []string{"ML05"}, conf: 0.6,
	}
}

// fingerprint returns the query's top-N salted window hashes, sorted descending, or nil for a
// non-finite query.
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
