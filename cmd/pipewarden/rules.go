package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/rules"
)

func newRulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Author detection rules: validate rule files, test them against events",
	}
	cmd.AddCommand(newRulesValidateCmd(g), newRulesTestCmd(g))
	return cmd
}

type rulesValidateOptions struct {
	noDefaults bool
}

func newRulesValidateCmd(g *globals) *cobra.Command {
	var o rulesValidateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check rule files (on top of the default ruleset); exit 0 if valid, 2 with file:line errors if not",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := rules.Load(cmd.Context(), rules.LoadOptions{Files: args, NoDefaults: o.noDefaults})
			if err != nil {
				return rulesLoadErr(g, err)
			}
			_, err = fmt.Fprintf(g.stdout, "ok: %d rules from %d files\n", rs.Len(), len(rs.Files()))
			return err
		},
	}
	cmd.Flags().BoolVar(&o.noDefaults, "no-defaults", false, "validate the files alone, without the embedded default ruleset")
	return cmd
}

// rulesLoadErr prints every located error and exits 2.
func rulesLoadErr(g *globals, err error) error {
	es := rules.AsErrors(err)
	for _, e := range es {
		fmt.Fprintf(g.stderr, "pipewarden: %v\n", e)
	}
	return &exitError{code: 2}
}

type rulesTestOptions struct {
	rules      []string
	events     string
	expect     string
	noDefaults bool
	format     string
}

func newRulesTestCmd(g *globals) *cobra.Command {
	var o rulesTestOptions
	cmd := &cobra.Command{
		Use:   "test --events EVENTS.jsonl [--rules FILE]... [--expect EXPECT.yaml]",
		Short: "Replay events through rules and print which rules fire on which events",
		Long: `Replay CloudEvents (JSON Lines; blank lines and # comments skipped) through the default
ruleset plus --rules files, in order, and print one line per firing: event id, rule, severity,
title. With --expect (a YAML map of event id to the rule ids that must fire on it; events not
listed must fire nothing) print every difference and exit 1 if there is any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.events == "" {
				return usageErr("rules test: --events is required")
			}
			if o.format != "text" && o.format != "json" {
				return usageErr("--format: unknown format %q (want text or json)", o.format)
			}
			var exp rules.Expectation
			if o.expect != "" {
				b, err := os.ReadFile(o.expect)
				if err != nil {
					return usageErr("%s: %v", o.expect, rulesPathErr(err))
				}
				if exp, err = rules.ParseExpectation(o.expect, b); err != nil {
					return usageErr("%v", err)
				}
			}
			f, err := os.Open(o.events)
			if err != nil {
				return usageErr("%s: %v", o.events, rulesPathErr(err))
			}
			defer f.Close()
			evs, err := rules.ReadEvents(o.events, f, event.NewDecoder(event.Limits{}, time.Now))
			if err != nil {
				return usageErr("%v", err)
			}
			rs, err := rules.Load(cmd.Context(), rules.LoadOptions{Files: o.rules, NoDefaults: o.noDefaults})
			if err != nil {
				return rulesLoadErr(g, err)
			}
			eng, err := rules.NewEngine(rs, rules.EngineOptions{})
			if err != nil {
				return err
			}
			got := rules.Replay(eng, evs)
			var diffs []string
			if exp != nil {
				diffs = rules.Diff(exp, evs, got)
			}
			if err := writeRulesTest(g, o.format, evs, got, diffs, exp != nil); err != nil {
				return err
			}
			for _, s := range eng.Stats() {
				if s.Errors > 0 {
					fmt.Fprintf(g.stderr, "pipewarden: rule %s failed on %d of %d evaluations\n", s.ID, s.Errors, s.Evaluations)
				}
			}
			if len(diffs) > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&o.rules, "rules", nil, "rule file or glob, loaded after the default ruleset (repeatable)")
	cmd.Flags().StringVar(&o.events, "events", "", "events to replay, one CloudEvent JSON per line")
	cmd.Flags().StringVar(&o.expect, "expect", "", "expected firings (YAML: event id -> [rule ids]); exit 1 on any difference")
	cmd.Flags().BoolVar(&o.noDefaults, "no-defaults", false, "leave out the embedded default ruleset")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func writeRulesTest(g *globals, format string, evs []event.Event, got []rules.Firing, diffs []string, checked bool) error {
	if format == "json" {
		if got == nil {
			got = []rules.Firing{}
		}
		out := map[string]any{"events": len(evs), "firings": got}
		if checked {
			out["differences"] = append([]string{}, diffs...)
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if err := rules.FormatFirings(g.stdout, got); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%d events, %d firings\n", len(evs), len(got))
	if !checked {
		return nil
	}
	for _, d := range diffs {
		fmt.Fprintf(g.stdout, "DIFF %s\n", d)
	}
	if len(diffs) == 0 {
		_, err := fmt.Fprintln(g.stdout, "ok: firings match the expectation")
		return err
	}
	_, err := fmt.Fprintf(g.stdout, "FAIL: %d differences from the expectation\n", len(diffs))
	return err
}

func rulesPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
