package signing

import (
	"bytes"
	"slices"
)

// Change is a file whose content differs from the signed manifest.
type Change struct {
	File string
	// Expected and Actual are the differing resources of the file: one each for "files"; the
	// shards that differ, are missing or are new for "shards".
	Expected []Resource
	Actual   []Resource
}

// ManifestDiff is what differs between a signed manifest and the files on disk, by file.
type ManifestDiff struct {
	Missing []string // signed, absent on disk
	Extra   []string // on disk, not signed
	Changed []Change
}

// Empty reports whether the manifests match.
func (d ManifestDiff) Empty() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Changed) == 0
}

// Diff compares expected (signed) with actual (computed) file by file. Resources are compared by
// name and digest; for shards a file is changed when any of its shards differs, appears or
// disappears.
func Diff(expected, actual *Manifest) ManifestDiff {
	exp := byFile(expected)
	act := byFile(actual)
	var d ManifestDiff
	for f, er := range exp {
		ar, ok := act[f]
		if !ok {
			d.Missing = append(d.Missing, f)
			continue
		}
		if c, changed := compareFile(f, er, ar); changed {
			d.Changed = append(d.Changed, c)
		}
	}
	for f := range act {
		if _, ok := exp[f]; !ok {
			d.Extra = append(d.Extra, f)
		}
	}
	slices.SortFunc(d.Missing, comparePaths)
	slices.SortFunc(d.Extra, comparePaths)
	slices.SortFunc(d.Changed, func(a, b Change) int { return comparePaths(a.File, b.File) })
	return d
}

func byFile(m *Manifest) map[string][]Resource {
	out := map[string][]Resource{}
	if m == nil {
		return out
	}
	for _, r := range m.Resources {
		f := FileOf(r, m.Serialization.Method)
		out[f] = append(out[f], r)
	}
	return out
}

func compareFile(file string, exp, act []Resource) (Change, bool) {
	am := make(map[string][]byte, len(act))
	for _, r := range act {
		am[r.Name] = r.Digest
	}
	em := make(map[string][]byte, len(exp))
	c := Change{File: file}
	for _, r := range exp {
		em[r.Name] = r.Digest
		if d, ok := am[r.Name]; !ok || !bytes.Equal(d, r.Digest) {
			c.Expected = append(c.Expected, r)
			if ok {
				c.Actual = append(c.Actual, Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: d})
			}
		}
	}
	for _, r := range act {
		if _, ok := em[r.Name]; !ok {
			c.Actual = append(c.Actual, r)
		}
	}
	return c, len(c.Expected) > 0 || len(c.Actual) > 0
}
