package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/alert"
)

func newAlertsCmd(g *globals) *cobra.Command {
	var api alertAPI
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Work with a running daemon's alerts",
	}
	api.add(cmd)
	var min int
	var out string
	tune := &cobra.Command{
		Use:   "tune [--min N] [--out FILE]",
		Short: "Propose rule exceptions from false-positive feedback",
		Long: `Reads the daemon's false-positive feedback and proposes, as a rule file of
"override: append" exceptions, one exception for each label combination (rule and subject)
that people marked false positive at least --min times. Nothing is applied: review the YAML,
then add the file to the rules the daemon loads. A summary per rule (alerts, false positives,
precision) goes to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if min < 1 {
				return usageErr("--min must be at least 1")
			}
			var fb alert.Feedback
			if err := api.call(cmd.Context(), http.MethodGet, "/v1/alerting/feedback?min="+strconv.Itoa(min), nil, &fb); err != nil {
				return err
			}
			for _, r := range fb.Rules {
				if r.FalsePositives > 0 {
					fmt.Fprintf(g.stderr, "%s: %d alerts, %d false positive, precision %.2f\n", r.Rule, r.Alerts, r.FalsePositives, r.Precision)
				}
			}
			for _, p := range fb.Proposals {
				if p.Note != "" {
					fmt.Fprintf(g.stderr, "%s %v: %s\n", p.Rule, p.Labels, p.Note)
				}
			}
			if fb.YAML == "" {
				fmt.Fprintf(g.stderr, "no label combination was marked false positive %d times or more; nothing to propose\n", min)
				return nil
			}
			if out == "" {
				_, err := fmt.Fprint(g.stdout, fb.YAML)
				return err
			}
			if err := os.WriteFile(out, []byte(fb.YAML), 0o644); err != nil {
				return usageErr("%s: %v", out, err)
			}
			fmt.Fprintf(g.stderr, "wrote %d proposal(s) to %s\n", len(fb.Proposals), out)
			return nil
		},
	}
	tune.Flags().IntVar(&min, "min", 3, "propose an exception after this many false-positive marks")
	tune.Flags().StringVar(&out, "out", "", "write the proposals to this file instead of standard output")
	cmd.AddCommand(tune)
	return cmd
}
