package main

import (
	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/report"
)

// judgeFlags are the flags of every command that judges something (DESIGN.md): --format and
// --fail-on.
type judgeFlags struct {
	format string
	failOn string
}

func (j *judgeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&j.format, "format", "text", "output format: text, json or sarif")
	cmd.Flags().StringVar(&j.failOn, "fail-on", "high", "exit 1 when a finding is at or above this severity (critical, high, medium, low, info)")
}

// parse validates the flags before any work is done, so usage errors exit 2 at once.
func (j *judgeFlags) parse() (report.Format, finding.Severity, error) {
	f, err := report.ParseFormat(j.format)
	if err != nil {
		return "", 0, usageErr("--format: %v", err)
	}
	s, err := finding.ParseSeverity(j.failOn)
	if err != nil {
		return "", 0, usageErr("--fail-on: %v", err)
	}
	return f, s, nil
}

// emit writes the report to stdout and turns the findings into the exit code.
func (j *judgeFlags) emit(g *globals, r *report.Report) error {
	f, failOn, err := j.parse()
	if err != nil {
		return err
	}
	r.Tool, r.Version = "pipewarden", g.version
	if err := report.Write(g.stdout, f, r); err != nil {
		return err
	}
	if code := report.ExitCode(r.Findings, failOn); code != 0 {
		return &exitError{code: code}
	}
	return nil
}
