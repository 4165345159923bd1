package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
	"github.com/pipewarden/pipewarden/internal/report"
)

func newDataCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Profile datasets and check new batches for drift and manipulation",
	}
	cmd.AddCommand(newDataProfileCmd(g), newDataCheckCmd(g))
	return cmd
}

type readFlags struct {
	format    string
	delimiter string
	maxLine   int
}

func (r *readFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.format, "input-format", "", "csv, tsv, jsonl or parquet (default: from the file extension)")
	cmd.Flags().StringVar(&r.delimiter, "delimiter", "", "CSV delimiter (default: sniffed among , ; tab |)")
	cmd.Flags().IntVar(&r.maxLine, "max-line-bytes", table.DefaultMaxLineBytes, "longest record accepted")
}

func (r *readFlags) options() (table.Options, error) {
	o := table.Options{Format: r.format, MaxLineBytes: r.maxLine}
	switch d := r.delimiter; {
	case d == "":
	case d == `\t` || d == "tab":
		o.Delimiter = '\t'
	case len(d) == 1:
		o.Delimiter = d[0]
	default:
		return o, usageErr("--delimiter: want one character, got %q", d)
	}
	return o, nil
}

func newDataProfileCmd(g *globals) *cobra.Command {
	var rf readFlags
	var out, label, id string
	var sample int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "profile FILE --out BASELINE.json",
		Short: "Write the baseline profile of a dataset (CSV, TSV, JSON Lines, Parquet; .gz too)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("data profile: --out is required")
			}
			opts, err := rf.options()
			if err != nil {
				return err
			}
			path := args[0]
			f, err := table.Open(path, opts)
			if err != nil {
				return usageErr("%s: %v", path, err)
			}
			defer f.Close()
			size := sample
			if size == 0 {
				size = -1 // --sample-size 0 disables the sample
			}
			b, err := dataset.Profile(f, dataset.ProfileOptions{Label: label, ID: id, SampleSize: size,
				Seed: seed, Source: filepath.Base(path), Digest: f.Digest})
			if err != nil {
				return usageErr("%s: %v", path, err)
			}
			var buf bytes.Buffer
			if err := b.Encode(&buf); err != nil {
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return usageErr("%s: %v", out, err)
			}
			fmt.Fprintf(g.stderr, "profiled %d rows x %d columns of %s into %s\n", b.Rows, len(b.Columns), path, out)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "baseline file to write (required)")
	cmd.Flags().StringVar(&label, "label", "", "label column")
	cmd.Flags().StringVar(&id, "id", "", "id column (excluded from features, checked for duplicates)")
	cmd.Flags().IntVar(&sample, "sample-size", dataset.DefaultSampleSize, "rows kept for neighbour tests; 0 keeps no rows (sensitive data)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed for the reservoir sample, sketches and calibration")
	return cmd
}

func newDataCheckCmd(g *globals) *cobra.Command {
	var jf judgeFlags
	var rf readFlags
	var baseline, label, segment string
	var alpha, indicatorP float64
	cmd := &cobra.Command{
		Use:   "check FILE --baseline BASELINE.json",
		Short: "Check a batch against a baseline: validation, drift and manipulation indicators",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := jf.parse(); err != nil {
				return err
			}
			if baseline == "" {
				return usageErr("data check: --baseline is required")
			}
			if !(alpha > 0 && alpha < 1) || !(indicatorP > 0 && indicatorP < 1) {
				return usageErr("data check: --alpha and --indicator-p must be between 0 and 1 (exclusive)")
			}
			opts, err := rf.options()
			if err != nil {
				return err
			}
			bf, err := os.Open(baseline)
			if err != nil {
				return usageErr("%s: %v", baseline, err)
			}
			b, err := dataset.DecodeBaseline(bf)
			bf.Close()
			if err != nil {
				return usageErr("%s: %v", baseline, err)
			}
			path := args[0]
			f, err := table.Open(path, opts)
			if err != nil {
				return usageErr("%s: %v", path, err)
			}
			defer f.Close()
			fs, err := dataset.Check(b, f, dataset.CheckOptions{Subject: filepath.Base(path), Label: label, Segment: segment,
				Alpha: alpha, IndicatorP: indicatorP})
			if err != nil {
				return usageErr("%s: %v", path, err)
			}
			for i := range fs {
				fs[i].Subject.Name = path
			}
			verdict := "clean"
			for _, x := range fs {
				switch x.Labels["verdict"] {
				case dataset.VerdictManipulation:
					verdict = dataset.VerdictManipulation
				case dataset.VerdictDrift:
					if verdict == "clean" {
						verdict = dataset.VerdictDrift
					}
				}
			}
			return jf.emit(g, &report.Report{Command: "data check", Findings: fs, Inputs: []string{path},
				Extra: map[string]any{"verdict": verdict, "baseline": baseline, "digest": f.Digest()}})
		},
	}
	jf.add(cmd)
	rf.add(cmd)
	cmd.Flags().StringVar(&baseline, "baseline", "", "baseline written by 'data profile' (required)")
	cmd.Flags().StringVar(&label, "label", "", "label column (default: the baseline's)")
	cmd.Flags().StringVar(&segment, "segment", "", "also report per value of this column (e.g. source)")
	cmd.Flags().Float64Var(&alpha, "alpha", 0.01, "false discovery rate of the drift tests (Benjamini-Hochberg)")
	cmd.Flags().Float64Var(&indicatorP, "indicator-p", 1e-4, "family-wise p-value a manipulation indicator must reach (Bonferroni)")
	return cmd
}
