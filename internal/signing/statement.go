package signing

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// In-toto and OMS identifiers.
const (
	PayloadTypeInToto   = "application/vnd.in-toto+json"
	StatementType       = "https://in-toto.io/Statement/v1"
	PredicateType       = "https://model_signing/signature/v1.0"
	PredicateTypeLegacy = "https://model_signing/Digests/v0.1"
	// LegacyModelName is what the v0.1 predicate, which names no model, is reported as.
	LegacyModelName = "compat-undefined-not-present"
	// maxResources bounds what a signature may list (a 1 TB model in 1 GB shards has 1,000).
	maxResources = 1_000_000
)

// ErrStatement is wrapped by every error about a statement that is not a valid OMS manifest.
var ErrStatement = errors.New("invalid model signing statement")

type statementOut struct {
	Type          string       `json:"_type"`
	Subject       []subjectOut `json:"subject"`
	PredicateType string       `json:"predicateType"`
	Predicate     predicateOut `json:"predicate"`
}

type subjectOut struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type predicateOut struct {
	Serialization serializationOut `json:"serialization"`
	Resources     []resourceOut    `json:"resources"`
}

type serializationOut struct {
	Method        string     `json:"method"`
	HashType      string     `json:"hash_type"`
	AllowSymlinks bool       `json:"allow_symlinks"`
	ShardSize     *floatSize `json:"shard_size,omitempty"`
	IgnorePaths   []string   `json:"ignore_paths,omitempty"`
}

type resourceOut struct {
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
	Name      string `json:"name"`
}

// floatSize is written as OMS writes shard sizes: a JSON float ("1000000000.0"), because the
// predicate passes through a protobuf Struct whose numbers are doubles.
type floatSize int64

func (f floatSize) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(f), 10) + ".0"), nil
}

// EncodeStatement renders the in-toto statement of m byte for byte as OMS does: two-space indent,
// ASCII-only, fields in protobuf order.
func EncodeStatement(m *Manifest) ([]byte, error) {
	st := statementOut{
		Type:          StatementType,
		Subject:       []subjectOut{{Name: m.ModelName, Digest: map[string]string{"sha256": hex.EncodeToString(m.RootDigest())}}},
		PredicateType: PredicateType,
		Predicate: predicateOut{
			Serialization: serializationOut{
				Method: m.Serialization.Method, HashType: m.Serialization.HashType,
				AllowSymlinks: m.Serialization.AllowSymlinks, IgnorePaths: m.Serialization.IgnorePaths,
			},
			Resources: make([]resourceOut, 0, len(m.Resources)),
		},
	}
	if m.Serialization.Method == MethodShards {
		s := floatSize(m.Serialization.ShardSize)
		st.Predicate.Serialization.ShardSize = &s
	}
	for _, r := range m.Resources {
		st.Predicate.Resources = append(st.Predicate.Resources,
			resourceOut{Algorithm: r.Algorithm, Digest: hex.EncodeToString(r.Digest), Name: r.Name})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	return asciiJSON(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// asciiJSON escapes every non-ASCII rune as \uXXXX (surrogate pairs above the BMP), as Python's
// json does by default. Non-ASCII bytes only occur inside JSON strings, so this is safe.
func asciiJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r < utf8.RuneSelf {
			out = append(out, byte(r))
			continue
		}
		if r > 0xFFFF {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}

type statementIn struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type predicateIn struct {
	Serialization *struct {
		Method        string      `json:"method"`
		HashType      string      `json:"hash_type"`
		AllowSymlinks any         `json:"allow_symlinks"`
		ShardSize     json.Number `json:"shard_size"`
		IgnorePaths   []string    `json:"ignore_paths"`
	} `json:"serialization"`
	Resources []struct {
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Digest    string `json:"digest"`
	} `json:"resources"`
}

// DecodeStatement reads a signed in-toto statement into the manifest it vouches for. It accepts
// the v1.0 predicate (checking the subject digest against the resources) and the legacy v0.1
// predicate; unknown predicate fields are ignored.
func DecodeStatement(payload []byte) (*Manifest, error) {
	var st statementIn
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("%w: _type %q, want %q", ErrStatement, st.Type, StatementType)
	}
	switch st.PredicateType {
	case PredicateType:
	case PredicateTypeLegacy:
		return decodeLegacy(&st)
	default:
		return nil, fmt.Errorf("%w: predicateType %q, want %q", ErrStatement, st.PredicateType, PredicateType)
	}
	if len(st.Subject) != 1 {
		return nil, fmt.Errorf("%w: %d subjects, want 1", ErrStatement, len(st.Subject))
	}
	var p predicateIn
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: predicate: %v", ErrStatement, err)
	}
	if p.Serialization == nil {
		return nil, fmt.Errorf("%w: predicate has no serialization", ErrStatement)
	}
	if len(p.Resources) > maxResources {
		return nil, fmt.Errorf("%w: %d resources, more than %d", ErrStatement, len(p.Resources), maxResources)
	}
	s := p.Serialization
	m := &Manifest{ModelName: st.Subject[0].Name, Serialization: Serialization{
		Method: s.Method, HashType: s.HashType, AllowSymlinks: truthy(s.AllowSymlinks), IgnorePaths: s.IgnorePaths,
	}}
	if s.HashType != HashSHA256 {
		return nil, fmt.Errorf("%w: hash_type %q is not supported (only %s)", ErrStatement, s.HashType, HashSHA256)
	}
	switch s.Method {
	case MethodFiles:
	case MethodShards:
		n, err := parseSize(s.ShardSize)
		if err != nil {
			return nil, fmt.Errorf("%w: shard_size: %v", ErrStatement, err)
		}
		m.Serialization.ShardSize = n
	default:
		return nil, fmt.Errorf("%w: serialization method %q", ErrStatement, s.Method)
	}
	seen := make(map[string]bool, len(p.Resources))
	for _, r := range p.Resources {
		d, err := hex.DecodeString(r.Digest)
		if err != nil || len(d) == 0 {
			return nil, fmt.Errorf("%w: resource %q: digest is not hex", ErrStatement, r.Name)
		}
		if err := checkResourceName(r.Name, s.Method); err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("%w: resource %q listed twice", ErrStatement, r.Name)
		}
		seen[r.Name] = true
		m.Resources = append(m.Resources, Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: d})
	}
	// The subject digest is over the resources in the order they are listed.
	want := strings.ToLower(st.Subject[0].Digest["sha256"])
	if got := hex.EncodeToString(m.RootDigest()); got != want {
		return nil, fmt.Errorf("%w: subject digest %q but the resources hash to %q", ErrStatement, want, got)
	}
	SortResources(m.Resources, s.Method)
	return m, nil
}

func decodeLegacy(st *statementIn) (*Manifest, error) {
	if len(st.Subject) > maxResources {
		return nil, fmt.Errorf("%w: %d subjects, more than %d", ErrStatement, len(st.Subject), maxResources)
	}
	m := &Manifest{ModelName: LegacyModelName, Serialization: Serialization{Method: MethodFiles, HashType: HashSHA256}}
	seen := map[string]bool{}
	for _, s := range st.Subject {
		d, err := hex.DecodeString(s.Digest["sha256"])
		if err != nil || len(d) == 0 {
			return nil, fmt.Errorf("%w: subject %q: no hex sha256 digest", ErrStatement, s.Name)
		}
		if err := checkResourceName(s.Name, MethodFiles); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: subject %q listed twice", ErrStatement, s.Name)
		}
		seen[s.Name] = true
		m.Resources = append(m.Resources, Resource{Name: s.Name, Algorithm: HashSHA256, Digest: d})
	}
	SortResources(m.Resources, MethodFiles)
	return m, nil
}

// checkResourceName refuses names that could point outside the model when joined to its root.
func checkResourceName(name, method string) error {
	p := name
	if method == MethodShards {
		var err error
		if p, _, _, err = SplitShard(name); err != nil {
			return fmt.Errorf("%w: %v", ErrStatement, err)
		}
	}
	if p == "." {
		return nil
	}
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") ||
		strings.ContainsRune(p, 0) {
		return fmt.Errorf("%w: resource name %q is not a clean relative path", ErrStatement, name)
	}
	return nil
}

// parseSize accepts an integral JSON number, written as an integer or as a float ("8.0").
func parseSize(n json.Number) (int64, error) {
	if n == "" {
		return DefaultShardSize, nil
	}
	if i, err := n.Int64(); err == nil {
		if i <= 0 {
			return 0, fmt.Errorf("%s is not positive", n)
		}
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f <= 0 || f > 1<<53 {
		return 0, fmt.Errorf("%s is not a positive whole number", n)
	}
	return int64(f), nil
}

// truthy reads allow_symlinks, which old signers wrote as a string.
func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(t, "true")
	}
	return false
}
