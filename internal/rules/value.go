package rules

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// native turns a CEL value into plain Go values (string, float64, int64, bool, nil, []any,
// map[string]any, time as RFC 3339), the shapes findings and snapshots hold.
func native(v ref.Val) any {
	switch x := v.(type) {
	case nil:
		return nil
	case types.String:
		return string(x)
	case types.Double:
		return float64(x)
	case types.Int:
		return int64(x)
	case types.Uint:
		return uint64(x)
	case types.Bool:
		return bool(x)
	case types.Null:
		return nil
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano)
	case types.Duration:
		return x.Duration.String()
	case types.Bytes:
		return string(x)
	case *types.Err:
		return nil
	}
	switch raw := v.Value().(type) {
	case map[string]any, []any, string, float64, bool:
		return raw
	}
	if l, ok := v.(traits.Lister); ok {
		n, _ := l.Size().(types.Int)
		out := make([]any, 0, int(n))
		it := l.Iterator()
		for it.HasNext() == types.True {
			out = append(out, native(it.Next()))
		}
		return out
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		it := m.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			out[keyString(native(k))] = native(m.Get(k))
		}
		return out
	}
	return v.Value()
}

// keyString is the canonical string of a value used as a map key, group key or set member:
// strings as themselves, numbers without a trailing ".0", everything else as JSON.
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// display renders a value for a finding title.
func display(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		if x != math.Trunc(x) {
			return strconv.FormatFloat(x, 'g', 6, 64)
		}
	}
	return keyString(v)
}

// celMapLiteral writes a map as a CEL literal with sorted keys.
func celMapLiteral(m map[string]any) (string, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, err := celLiteral(m[k])
		if err != nil {
			return "", err
		}
		parts[i] = strconv.Quote(k) + ": " + v
	}
	return "{" + strings.Join(parts, ", ") + "}", nil
}

// toFloat reads a number from a native value.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}
