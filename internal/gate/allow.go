package gate

import (
	"fmt"
	"path"
	"slices"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// pathMatch is path.Match; an empty pattern matches everything.
func pathMatch(pattern, name string) (bool, error) {
	if pattern == "" {
		return true, nil
	}
	return path.Match(pattern, name)
}

// allowed returns the first unexpired allow entry that matches f, found by a check of target.
func (r *runner) allowed(f finding.Finding, target string) (Allow, bool) {
	for _, a := range r.p.Allow {
		if !a.Expires.IsZero() && !r.now.Before(a.Expires) {
			continue
		}
		if a.Rule != "" && a.Rule != f.Rule {
			continue
		}
		if a.Target != "" && a.Target != target {
			continue
		}
		if a.ID != "" && !slices.Contains(findingIDs(f), a.ID) {
			continue
		}
		if ok, _ := pathMatch(a.Subject, f.Subject.Name); !ok {
			continue
		}
		return a, true
	}
	return Allow{}, false
}

// findingIDs are the identifiers an allow entry's id can name: advisory ids and aliases
// (deps findings carry them in evidence "ids" and "aliases"), or a label "id".
func findingIDs(f finding.Finding) []string {
	var ids []string
	for _, k := range []string{"ids", "aliases", "id"} {
		switch v := f.Evidence[k].(type) {
		case []string:
			ids = append(ids, v...)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					ids = append(ids, s)
				}
			}
		case string:
			ids = append(ids, v)
		}
	}
	if id := f.Labels["id"]; id != "" {
		ids = append(ids, id)
	}
	return ids
}

// expiredAllows reports each allow entry past its date: the findings it accepted count again,
// and the entry should be renewed or removed.
func (r *runner) expiredAllows() []finding.Finding {
	var fs []finding.Finding
	file := r.p.Path
	if file == "" {
		file = "policy"
	}
	for _, a := range r.p.Allow {
		if a.Expires.IsZero() || r.now.Before(a.Expires) {
			continue
		}
		what := a.Rule
		if a.ID != "" {
			what = a.ID
		}
		fs = append(fs, finding.Finding{
			Rule: RuleAllowExpired, Severity: finding.Low, Confidence: 1, Time: r.now,
			Title:    fmt.Sprintf("allow entry for %s expired on %s; the findings it accepted count again", what, a.Expires.AddDate(0, 0, -1).Format("2006-01-02")),
			Subject:  finding.Subject{Kind: "file", Name: file},
			Location: &finding.Location{Path: file, Line: a.Line},
			Evidence: map[string]any{"rule": a.Rule, "id": a.ID, "subject": a.Subject, "reason": a.Reason},
		})
	}
	return fs
}
