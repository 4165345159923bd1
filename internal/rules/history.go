package rules

import (
	"math"
	"sort"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// history is a named, bounded record of what events said per key: the last value, the distinct
// values and the last numbers, for rules that compare an event with the past (a dataset's
// source, schema and row counts; a project's training resources; approved model digests).
//
// Rules read it through the history.* CEL functions; it is updated after every rule has seen the
// event, so a rule always compares the event with what came before it.
type history struct {
	name    string
	desc    string
	pos     pos
	match   []string
	when    *expr // optional filter
	key     *expr
	value   *expr
	size    int // values kept per key
	maxKeys int
	ttl     time.Duration
	fp      string // definition fingerprint: state carries over reloads only when it is unchanged

	hs *histStore // shared with the next ruleset when the definition is unchanged
}

// histStore is a history's state; it moves to the next ruleset on reload, lock included.
type histStore struct {
	mu  sync.RWMutex
	m   *boundedMap[*histEntry]
	now time.Time // latest event time recorded, for ttl on reads
}

type histEntry struct {
	Count    int64                `json:"count"`
	Last     any                  `json:"last"`
	LastTime time.Time            `json:"last_time"`
	Distinct map[string]time.Time `json:"distinct,omitempty"` // canonical value -> last seen
	Order    []string             `json:"order,omitempty"`    // ring of Distinct's keys, oldest at Head once full
	Head     int                  `json:"head,omitempty"`
	Nums     []float64            `json:"nums,omitempty"` // ring of the last numbers
	Next     int                  `json:"next,omitempty"` // ring position
	// lastRaw is the JSON text Last was decoded from, when it was a list or an object read
	// from the event (see recordRaw); lastKey is keyString(Last) then.
	lastRaw, lastKey string
}

func (h *history) reset() { h.hs = &histStore{m: newBoundedMap[*histEntry](h.maxKeys, h.ttl)} }

func (h *history) record(key string, v any, t time.Time) {
	h.recordRaw(key, nil, func() any { return v }, t)
}

// recordRaw records a value. raw, when set, is the value's JSON text in the event: when it is
// the text of the last value recorded for the key, the value is the same and is neither decoded
// nor keyed again (a dataset's schema, on every batch).
func (h *history) recordRaw(key string, raw []byte, value func() any, t time.Time) {
	hs := h.hs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if t.After(hs.now) {
		hs.now = t
	}
	e := hs.m.upsert(key, t, func() *histEntry { return &histEntry{Distinct: map[string]time.Time{}} })
	e.Count++
	e.LastTime = t
	if raw != nil && e.lastRaw != "" && e.lastRaw == string(raw) {
		// The last value, so also the newest of Distinct, and not a number.
		e.Distinct[e.lastKey] = t
		return
	}
	v := value()
	e.Last = v
	k := keyString(v)
	e.lastRaw, e.lastKey = string(raw), k
	if _, ok := e.Distinct[k]; !ok {
		// Distinct values are evicted first in, first out, in O(1): Order is a ring of the
		// keys of Distinct.
		if len(e.Order) < h.size {
			e.Order = append(e.Order, k)
		} else {
			delete(e.Distinct, e.Order[e.Head])
			e.Order[e.Head] = k
			e.Head = (e.Head + 1) % h.size
		}
	}
	e.Distinct[k] = t
	if f, ok := toFloat(v); ok {
		if len(e.Nums) < h.size {
			e.Nums = append(e.Nums, f)
		} else {
			e.Nums[e.Next] = f
			e.Next = (e.Next + 1) % h.size
		}
	}
}

// read calls f with the entry of key (nil when there is none) under the read lock.
func (h *history) read(key string, f func(e *histEntry)) {
	hs := h.hs
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	e, _ := hs.m.get(key, hs.now)
	f(e)
}

func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// zscore is how many standard deviations v lies from the mean of xs. The deviation is floored
// at 1% of |mean| so that a perfectly steady history does not make every small change
// infinite; with fewer than two values there is no history to compare with and it is 0.
func zscore(xs []float64, v float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m, s := meanStd(xs)
	s = math.Max(s, 0.01*math.Abs(m))
	if s == 0 {
		if v == m {
			return 0
		}
		return math.Copysign(1e9, v-m)
	}
	return (v - m) / s
}

// historyFuncs declares the history.* CEL functions over the named histories. Names are checked
// at compile time (checkHistoryCalls); an unknown name at run time is an evaluation error.
func historyFuncs(lookup func(string) *history) []cel.EnvOption {
	get := func(name ref.Val) (*history, ref.Val) {
		n, ok := name.(types.String)
		if !ok {
			return nil, types.NewErr("history name must be a string")
		}
		h := lookup(string(n))
		if h == nil {
			return nil, types.NewErr("unknown history %q", string(n))
		}
		return h, nil
	}
	entryFunc := func(f func(e *histEntry) ref.Val) func(name, key ref.Val) ref.Val {
		return func(name, key ref.Val) ref.Val {
			h, errv := get(name)
			if errv != nil {
				return errv
			}
			var out ref.Val
			h.read(keyString(native(key)), func(e *histEntry) { out = f(e) })
			return out
		}
	}
	sd := cel.StringType
	dyn := cel.DynType
	return []cel.EnvOption{
		cel.Function("history.count", cel.Overload("history_count", []*cel.Type{sd, dyn}, cel.IntType,
			cel.BinaryBinding(entryFunc(func(e *histEntry) ref.Val {
				if e == nil {
					return types.Int(0)
				}
				return types.Int(e.Count)
			})))),
		cel.Function("history.last", cel.Overload("history_last", []*cel.Type{sd, dyn}, dyn,
			cel.BinaryBinding(entryFunc(func(e *histEntry) ref.Val {
				if e == nil {
					return types.NullValue
				}
				return types.DefaultTypeAdapter.NativeToValue(e.Last)
			})))),
		cel.Function("history.values", cel.Overload("history_values", []*cel.Type{sd, dyn}, cel.ListType(cel.StringType),
			cel.BinaryBinding(entryFunc(func(e *histEntry) ref.Val {
				var vs []string
				if e != nil {
					for k := range e.Distinct {
						vs = append(vs, k)
					}
					sort.Strings(vs)
				}
				return types.NewStringList(types.DefaultTypeAdapter, vs)
			})))),
		cel.Function("history.mean", cel.Overload("history_mean", []*cel.Type{sd, dyn}, cel.DoubleType,
			cel.BinaryBinding(entryFunc(func(e *histEntry) ref.Val {
				if e == nil {
					return types.Double(0)
				}
				m, _ := meanStd(e.Nums)
				return types.Double(m)
			})))),
		cel.Function("history.stddev", cel.Overload("history_stddev", []*cel.Type{sd, dyn}, cel.DoubleType,
			cel.BinaryBinding(entryFunc(func(e *histEntry) ref.Val {
				if e == nil {
					return types.Double(0)
				}
				_, s := meanStd(e.Nums)
				return types.Double(s)
			})))),
		cel.Function("history.seen", cel.Overload("history_seen", []*cel.Type{sd, dyn, dyn}, cel.BoolType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				h, errv := get(args[0])
				if errv != nil {
					return errv
				}
				seen := false
				h.read(keyString(native(args[1])), func(e *histEntry) {
					if e != nil {
						_, seen = e.Distinct[keyString(native(args[2]))]
					}
				})
				return types.Bool(seen)
			}))),
		cel.Function("history.zscore", cel.Overload("history_zscore", []*cel.Type{sd, dyn, dyn}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				h, errv := get(args[0])
				if errv != nil {
					return errv
				}
				v, ok := toFloat(native(args[2]))
				if !ok {
					return types.NewErr("history.zscore: value %v is not a number", native(args[2]))
				}
				z := 0.0
				h.read(keyString(native(args[1])), func(e *histEntry) {
					if e != nil {
						z = zscore(e.Nums, v)
					}
				})
				return types.Double(z)
			}))),
	}
}
