package gate

import (
	"errors"
	"fmt"
	"os"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// data checks a data file against its approved baseline (internal/dataset). A missing file or
// an unusable baseline stops the check; a file that stops parsing part-way is a high finding, since
// what was not read is not known to be clean.
func (r *runner) data(d Dataset) CheckResult {
	c := CheckResult{Kind: KindData, Target: d.Path, FailOn: r.failOn(d.FailOn)}
	bf, err := os.Open(d.Baseline)
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", d.Baseline, unwrapPath(err))
		return c
	}
	defer bf.Close()
	b, err := dataset.DecodeBaseline(bf)
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", d.Baseline, err)
		return c
	}
	f, err := table.Open(d.Path, table.Options{})
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", d.Path, unwrapPath(err))
		return c
	}
	defer f.Close()
	fs, err := dataset.Check(b, f, dataset.CheckOptions{Subject: d.Path, Label: d.Label, Segment: d.Segment, Now: r.stamp()})
	if err != nil {
		loc := &finding.Location{Path: d.Path}
		var re *table.RowError
		if errors.As(err, &re) && re.Line > 0 && re.Line < 1<<31 {
			loc.Line = int(re.Line)
		}
		fs = append(fs, finding.Finding{
			Rule: RuleDataUnread, Severity: finding.High, Confidence: 1, Time: r.now,
			Title:    "the data file could not be read to the end; what was not read is not known to be clean",
			Subject:  finding.Subject{Kind: "dataset", Name: d.Path},
			Location: loc,
			Evidence: map[string]any{"error": err.Error(), "baseline": d.Baseline},
		})
	}
	c.Findings = fs
	c.Extra = map[string]any{"baseline": d.Baseline, "digest": f.Digest()}
	return c
}
