package deps

import (
	"sort"
	"strings"
)

// affects reports whether an advisory's affected entry covers version raw of the package. It
// follows the OSV evaluation: the explicit versions list, then each ECOSYSTEM range with its
// events sorted by version. GIT ranges (commits, often listed first in PyPI advisories) and
// SEMVER ranges are skipped without giving up on the record. A range whose bounds are not
// PEP 440 versions is skipped too, and reported through uncertain.
func affects(a *Affected, raw string) (hit, uncertain bool) {
	v, ok := parseVersion(raw)
	if !ok {
		// Without a PEP 440 version only the explicit list can be used.
		for _, lv := range a.Versions {
			if lv == raw {
				return true, false
			}
		}
		return false, hasEcosystemRange(a)
	}
	for i := range a.Ranges {
		r := &a.Ranges[i]
		if !strings.EqualFold(r.Type, "ECOSYSTEM") {
			continue
		}
		in, good := inRange(r.Events, v)
		if !good {
			uncertain = true
			continue
		}
		if in {
			return true, false
		}
	}
	if inList(a.Versions, raw, v) {
		return true, false
	}
	return false, uncertain
}

// inList looks v up in an advisory's explicit versions. Lists run to hundreds of entries, so
// only entries that can be equal (same first release number, or an epoch) are parsed. A local
// build (2.1.0+cu121) counts as the release it was built from.
func inList(list []string, raw string, v version) bool {
	pub := v
	if p, ok := parseVersion(v.public); ok {
		pub = p
	}
	lead := leadingNumber(pub.raw)
	for _, lv := range list {
		if lv == raw {
			return true
		}
		if !strings.Contains(lv, "!") && leadingNumber(lv) != lead {
			continue
		}
		if w, ok := parseVersion(lv); ok && (w.compare(v) == 0 || w.compare(pub) == 0) {
			return true
		}
	}
	return false
}

// leadingNumber is the first release number of a version string without leading zeros.
func leadingNumber(s string) string {
	s = strings.TrimLeft(strings.TrimSpace(s), "vV")
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := strings.TrimLeft(s[:i], "0")
	if n == "" && i > 0 {
		return "0"
	}
	return n
}

func hasEcosystemRange(a *Affected) bool {
	for _, r := range a.Ranges {
		if strings.EqualFold(r.Type, "ECOSYSTEM") {
			return true
		}
	}
	return false
}

type bound struct {
	kind int // order of evaluation at equal versions does not matter: kinds are exclusive
	zero bool
	v    version
}

const (
	introduced = iota
	fixed
	lastAffected
	limit
)

// inRange evaluates one ECOSYSTEM range. good is false when a bound does not parse.
func inRange(events []Event, v version) (in, good bool) {
	bs := make([]bound, 0, len(events))
	for _, e := range events {
		var b bound
		var s string
		switch {
		case e.Introduced != "":
			b.kind, s = introduced, e.Introduced
		case e.Fixed != "":
			b.kind, s = fixed, e.Fixed
		case e.LastAffected != "":
			b.kind, s = lastAffected, e.LastAffected
		case e.Limit != "":
			b.kind, s = limit, e.Limit
		default:
			continue
		}
		if b.kind == introduced && s == "0" {
			b.zero = true
		} else {
			pv, ok := parseVersion(s)
			if !ok {
				return false, false
			}
			b.v = pv
		}
		bs = append(bs, b)
	}
	sort.SliceStable(bs, func(i, j int) bool {
		if bs[i].zero || bs[j].zero {
			return bs[i].zero && !bs[j].zero
		}
		return bs[i].v.compare(bs[j].v) < 0
	})
	for _, b := range bs {
		switch b.kind {
		case introduced:
			if b.zero || v.compare(b.v) >= 0 {
				in = true
			}
		case fixed:
			if v.compare(b.v) >= 0 {
				in = false
			}
		case lastAffected:
			if v.compare(b.v) > 0 {
				in = false
			}
		case limit:
			if v.compare(b.v) >= 0 {
				in = false
			}
		}
	}
	return in, true
}
