package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// snapshotVersion is bumped when the snapshot format changes; older snapshots are refused.
const snapshotVersion = 1

type snapshot struct {
	Version   int                    `json:"version"`
	Rules     map[string]snapCorr    `json:"rules,omitempty"`
	Histories map[string]snapHistory `json:"histories,omitempty"`
}

type snapCorr struct {
	FP     string      `json:"fp"`
	Groups []snapGroup `json:"groups"`
}

type snapGroup struct {
	Key     string     `json:"key"`
	Touched time.Time  `json:"touched"`
	Entry   *corrEntry `json:"entry"`
}

type snapHistory struct {
	FP   string        `json:"fp"`
	Now  time.Time     `json:"now"`
	Keys []snapHistKey `json:"keys"`
}

type snapHistKey struct {
	Key     string     `json:"key"`
	Touched time.Time  `json:"touched"`
	Entry   *histEntry `json:"entry"`
}

// Snapshot serialises the state of correlation rules and histories (JSON), for the daemon to
// keep in its store across restarts.
func (e *Engine) Snapshot() ([]byte, error) {
	rs := e.rs.Load()
	s := snapshot{Version: snapshotVersion, Rules: map[string]snapCorr{}, Histories: map[string]snapHistory{}}
	for _, r := range rs.rules {
		if r.corr == nil {
			continue
		}
		cs := r.corr.cs
		cs.mu.Lock()
		sc := snapCorr{FP: r.corr.fp, Groups: make([]snapGroup, 0, cs.m.len())}
		cs.m.each(func(k string, v *corrEntry, t time.Time) {
			cp := *v
			cp.Times, cp.TNext = ringOrdered(v.Times, v.TNext), 0
			cp.IDs, cp.INext = ringOrdered(v.IDs, v.INext), 0
			cp.Hits = append([]seqHit(nil), v.Hits...)
			if v.Values != nil {
				cp.Values = make(map[string]time.Time, len(v.Values))
				for vk, vt := range v.Values {
					cp.Values[vk] = vt
				}
			}
			sc.Groups = append(sc.Groups, snapGroup{Key: k, Touched: t, Entry: &cp})
		})
		cs.mu.Unlock()
		s.Rules[r.id] = sc
	}
	for name, h := range rs.histories {
		hs := h.hs
		hs.mu.RLock()
		sh := snapHistory{FP: h.fp, Now: hs.now, Keys: make([]snapHistKey, 0, hs.m.len())}
		hs.m.each(func(k string, v *histEntry, t time.Time) {
			cp := *v
			cp.Nums = append([]float64(nil), v.Nums...)
			cp.Order, cp.Head = ringOrdered(v.Order, v.Head), 0
			cp.Distinct = make(map[string]time.Time, len(v.Distinct))
			for dk, dt := range v.Distinct {
				cp.Distinct[dk] = dt
			}
			sh.Keys = append(sh.Keys, snapHistKey{Key: k, Touched: t, Entry: &cp})
		})
		hs.mu.RUnlock()
		s.Histories[name] = sh
	}
	return json.Marshal(s)
}

// Restore loads a snapshot into the current ruleset. State of rules and histories that no longer
// exist or whose definitions changed is dropped; caps apply as the state is put back.
func (e *Engine) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("restore rules state: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("restore rules state: snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	rs := e.rs.Load()
	for _, r := range rs.rules {
		sc, ok := s.Rules[r.id]
		if !ok || r.corr == nil || sc.FP != r.corr.fp {
			continue
		}
		cs := r.corr.cs
		cs.mu.Lock()
		for _, g := range sc.Groups {
			if g.Entry == nil {
				continue
			}
			en := g.Entry
			// Snapshots hold rings oldest first; anything else is normalised.
			en.Times, en.TNext = ringOrdered(en.Times, en.TNext), 0
			sort.Slice(en.Times, func(i, j int) bool { return en.Times[i] < en.Times[j] })
			if len(en.Times) > r.corr.threshold {
				en.Times = en.Times[len(en.Times)-r.corr.threshold:]
			}
			en.IDs, en.INext = ringOrdered(en.IDs, en.INext), 0
			if len(en.IDs) > maxEvidenceIDs {
				en.IDs = en.IDs[len(en.IDs)-maxEvidenceIDs:]
			}
			for len(en.Values) > r.corr.threshold {
				for k := range en.Values {
					delete(en.Values, k)
					break
				}
			}
			for _, h := range en.Hits {
				if h.Step < 0 || h.Step >= len(r.corr.steps) {
					en.Hits = nil
					break
				}
			}
			cs.m.put(g.Key, en, g.Touched)
		}
		cs.mu.Unlock()
	}
	for name, sh := range s.Histories {
		h, ok := rs.histories[name]
		if !ok || sh.FP != h.fp {
			continue
		}
		hs := h.hs
		hs.mu.Lock()
		if sh.Now.After(hs.now) {
			hs.now = sh.Now
		}
		for _, k := range sh.Keys {
			en := k.Entry
			if en == nil {
				continue
			}
			if len(en.Nums) > h.size {
				en.Nums = en.Nums[len(en.Nums)-h.size:]
			}
			if en.Next < 0 || en.Next >= h.size {
				en.Next = 0
			}
			if en.Distinct == nil {
				en.Distinct = map[string]time.Time{}
			}
			// Rebuild the eviction order from the values themselves, oldest first, so that
			// Order and Distinct agree whatever the snapshot says.
			en.Order = en.Order[:0]
			for dk := range en.Distinct {
				en.Order = append(en.Order, dk)
			}
			sort.Slice(en.Order, func(i, j int) bool { return en.Distinct[en.Order[i]].Before(en.Distinct[en.Order[j]]) })
			if extra := len(en.Order) - h.size; extra > 0 {
				for _, dk := range en.Order[:extra] {
					delete(en.Distinct, dk)
				}
				en.Order = en.Order[extra:]
			}
			en.Head = 0
			hs.m.put(k.Key, en, k.Touched)
		}
		hs.mu.Unlock()
	}
	return nil
}
