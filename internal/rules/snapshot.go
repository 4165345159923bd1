package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
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
func (e *Engine) Snapshot() ([]byte, error) { return e.SnapshotPaced(0) }

// SnapshotPaced is Snapshot for a background saver: it sleeps for pause after every
// snapshotYieldEvery entries it encodes, leaving the processors to the work in flight (a
// snapshot of 10,000 groups then takes about 40 pauses longer). With pause 0 it only yields.
func (e *Engine) SnapshotPaced(pause time.Duration) ([]byte, error) {
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
	b, err := encodeSnapshot(&s, int(e.snapSize.Load()+e.snapSize.Load()/8), pause)
	e.snapSize.Store(int64(len(b)))
	return b, err
}

// snapshotYieldEvery is how many groups or keys Snapshot encodes between two yields of its
// processor. Snapshots are taken beside ingestion, and one json.Marshal of tens of thousands of
// entries held a processor for 30–50 ms, a stall for the requests queued behind it.
const snapshotYieldEvery = 256

// encodeSnapshot writes s as json.Marshal would (the format Restore reads), entry by entry,
// yielding the processor, or sleeping for pause, now and then.
func encodeSnapshot(s *snapshot, sizeHint int, pause time.Duration) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, max(sizeHint, 512)))
	enc := json.NewEncoder(buf) // escapes HTML like json.Marshal; its newlines are whitespace
	n := 0
	put := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		if n++; n%snapshotYieldEvery == 0 {
			if pause > 0 {
				time.Sleep(pause)
			} else {
				runtime.Gosched()
			}
		}
		return nil
	}
	// object writes one map of s, sorted by key; body writes one value's members.
	object := func(keys []string, body func(k string) error) error {
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := put(k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := body(k); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	}
	// list writes the rest of an object: its fingerprint and its list of entries.
	list := func(name, fp string, count int, item func(i int) any) error {
		buf.WriteString(`"fp":`)
		if err := put(fp); err != nil {
			return err
		}
		buf.WriteString(`,"` + name + `":[`)
		for i := 0; i < count; i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := put(item(i)); err != nil {
				return err
			}
		}
		buf.WriteString("]}")
		return nil
	}
	fmt.Fprintf(buf, `{"version":%d,"rules":`, s.Version)
	err := object(slices.Sorted(maps.Keys(s.Rules)), func(id string) error {
		sc := s.Rules[id]
		buf.WriteByte('{')
		return list("groups", sc.FP, len(sc.Groups), func(i int) any { return &sc.Groups[i] })
	})
	if err != nil {
		return nil, err
	}
	buf.WriteString(`,"histories":`)
	err = object(slices.Sorted(maps.Keys(s.Histories)), func(name string) error {
		sh := s.Histories[name]
		buf.WriteString(`{"now":`)
		if err := put(sh.Now); err != nil {
			return err
		}
		buf.WriteByte(',')
		return list("keys", sh.FP, len(sh.Keys), func(i int) any { return &sh.Keys[i] })
	})
	if err != nil {
		return nil, err
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
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
