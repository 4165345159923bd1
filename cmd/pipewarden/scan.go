package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/modelscan"
	"github.com/pipewarden/pipewarden/internal/report"
)

type scanOptions struct {
	judge      judgeFlags
	allow      []string
	allowFile  string
	maxDepth   int
	maxTimeSec int
}

func newScanCmd(g *globals) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan PATH...",
		Short: "Find code hidden in model files (pickle, PyTorch, NumPy, joblib, Keras, SavedModel, ONNX, safetensors, GGUF)",
		Long: `scan inspects model artifacts without loading them. Formats are recognised by content, never
by file name. Pickles are judged by an opcode walker under a default-deny policy: known-dangerous
imports are critical, anything not on the allowlist is high until allowed with --allow. A file that
cannot be fully analysed is reported as inconclusive (high), never clean.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := o.judge.parse(); err != nil {
				return err
			}
			allow := append([]string(nil), o.allow...)
			if o.allowFile != "" {
				more, err := readAllowFile(o.allowFile)
				if err != nil {
					return usageErr("%s: %v", o.allowFile, err)
				}
				allow = append(allow, more...)
			}
			lim := modelscan.Limits{MaxDepth: o.maxDepth}
			s, err := modelscan.New(modelscan.Options{Allow: allow, Limits: lim})
			if err != nil {
				return usageErr("--allow: %v", err)
			}
			var results []modelscan.FileResult
			for _, p := range args {
				rs, err := s.ScanPath(cmd.Context(), p)
				if err != nil {
					return usageErr("%s: %v", p, unwrapPathErr(err))
				}
				results = append(results, rs...)
			}
			return o.judge.emit(g, scanReport(args, results))
		},
	}
	o.judge.add(cmd)
	cmd.Flags().StringSliceVar(&o.allow, "allow", nil, "allow a pickle import: module.name or module.* (repeatable)")
	cmd.Flags().StringVar(&o.allowFile, "policy", "", "file of allowed imports, one module.name or module.* per line (# comments)")
	cmd.Flags().IntVar(&o.maxDepth, "max-depth", 0, "archives nested deeper than this are inconclusive (default 4)")
	return cmd
}

func scanReport(inputs []string, results []modelscan.FileResult) *report.Report {
	counts := map[string]int{}
	files := make([]map[string]any, 0, len(results))
	for _, r := range results {
		counts[string(r.Outcome)]++
		files = append(files, map[string]any{"path": r.Path, "format": r.Format, "outcome": r.Outcome, "bytes": r.Bytes})
	}
	rules := map[string]report.RuleInfo{}
	for id, d := range modelscan.RuleDescriptions() {
		rules[id] = report.RuleInfo{Description: d}
	}
	return &report.Report{
		Command:  "scan",
		Inputs:   inputs,
		Findings: modelscan.AllFindings(results),
		Extra:    map[string]any{"files": len(results), "outcomes": counts, "results": files},
		Rules:    rules,
	}
}

func readAllowFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// unwrapPathErr drops the operation and path a *os.PathError repeats, since the message
// already names the input.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	for e := err; e != nil; {
		if p, ok := e.(*os.PathError); ok {
			pe = p
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if pe != nil {
		return fmt.Errorf("%v", pe.Err)
	}
	return err
}
