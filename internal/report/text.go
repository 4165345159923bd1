package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

func writeText(w io.Writer, r *Report) error {
	fs := r.Sorted()
	var b strings.Builder
	for _, f := range fs {
		where := f.Subject.Name
		if f.Location != nil {
			where = f.Location.Path
			if f.Location.Line > 0 {
				where = fmt.Sprintf("%s:%d", where, f.Location.Line)
			}
		}
		fmt.Fprintf(&b, "%-8s %s  %s  [%s]\n", strings.ToUpper(f.Severity.String()), where, f.Title, f.Rule)
		keys := make([]string, 0, len(f.Evidence))
		for k := range f.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := fmt.Sprint(f.Evidence[k])
			if len(v) > 200 {
				v = v[:200] + "…"
			}
			fmt.Fprintf(&b, "         %s: %s\n", k, v)
		}
	}
	s := r.Summarize()
	if s.Total == 0 {
		fmt.Fprintf(&b, "no findings")
	} else {
		fmt.Fprintf(&b, "%d finding(s):", s.Total)
		for _, n := range []string{"critical", "high", "medium", "low", "info"} {
			if c := s.BySeverity[n]; c > 0 {
				fmt.Fprintf(&b, " %d %s", c, n)
			}
		}
	}
	if len(r.Inputs) > 0 {
		fmt.Fprintf(&b, " (%d input(s))", len(r.Inputs))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
