package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gate"
	"github.com/pipewarden/pipewarden/internal/modelscan"
	"github.com/pipewarden/pipewarden/internal/report"
)

type checkOptions struct {
	policy      string
	server      string
	token       string
	sarif       string
	junit       string
	json        string
	format      string
	failOn      string
	endpoint    string
	modelDigest string
	actor       string
}

func newCheckCmd(g *globals) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check [--policy .pipewarden.yml] [--server URL]",
		Short: "The CI/CD gate: run every check the policy names and give one verdict",
		Long: `check reads a policy file naming model directories to scan and verify, datasets to check
against baselines and lockfiles to check, with a fail-on severity per check and allowlists. It
runs every check, prints one summary table, writes --sarif, --junit and --json reports at once,
and exits 0 when every check passes, 1 when a check fails (or deployments are paused), 2 when
the policy is invalid or an input cannot be read.

With --server it first asks the pipewarden daemon whether deployments are paused (failing if they
are) and then reports the verdict as a pipewarden.deploy.change event. The token comes from
--token or the PIPEWARDEN_TOKEN environment variable. See docs/ci.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("token") {
				o.token = os.Getenv("PIPEWARDEN_TOKEN")
			}
			if o.actor == "" {
				o.actor = ciActor()
			}
			var override *finding.Severity
			if cmd.Flags().Changed("fail-on") {
				s, err := finding.ParseSeverity(o.failOn)
				if err != nil {
					return usageErr("--fail-on: %v", err)
				}
				override = &s
			}
			return runCheck(cmd.Context(), g, &o, override)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", gate.DefaultPolicyFile, "the policy file")
	f.StringVar(&o.server, "server", "", "pipewarden server URL: fail when deployments are paused, report the verdict as an event")
	f.StringVar(&o.token, "token", "", "API token for --server (default $PIPEWARDEN_TOKEN)")
	f.StringVar(&o.sarif, "sarif", "", "also write a SARIF 2.1.0 report to this file")
	f.StringVar(&o.junit, "junit", "", "also write a JUnit XML report to this file")
	f.StringVar(&o.json, "json", "", "also write a JSON report to this file")
	f.StringVar(&o.format, "format", "text", "stdout format: text, json, sarif or junit (the summary table goes to stderr unless text)")
	f.StringVar(&o.failOn, "fail-on", "high", "the default fail-on severity, for checks whose policy entry names none (overrides the policy's fail_on)")
	f.StringVar(&o.endpoint, "endpoint", "", "the endpoint being deployed, for the deploy event (overrides deploy.endpoint)")
	f.StringVar(&o.modelDigest, "model-digest", "", "the digest of the model being deployed (overrides deploy.model / deploy.model_digest)")
	f.StringVar(&o.actor, "actor", "", "who deploys, for the deploy event (default $PIPEWARDEN_ACTOR, $GITHUB_ACTOR, $GITLAB_USER_LOGIN or $USER)")
	return cmd
}

// ciActor names who runs the pipeline, from the variables CI systems set.
func ciActor() string {
	for _, k := range []string{"PIPEWARDEN_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

func runCheck(ctx context.Context, g *globals, o *checkOptions, failOn *finding.Severity) error {
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return usageErr("--format: %v", err)
	}
	p, err := gate.LoadFile(o.policy)
	if err != nil {
		return usageErr("%v", unwrapPathErrKeep(o.policy, err))
	}
	var client *gate.Client
	var status gate.DeploymentStatus
	endpoint := firstNonEmpty(o.endpoint, p.Deploy.Endpoint)
	if o.server != "" {
		if client, err = gate.NewClient(o.server, o.token, nil); err != nil {
			return usageErr("--server: %v", err)
		}
		if endpoint == "" {
			return usageErr("--server: name the endpoint being deployed with --endpoint or deploy.endpoint in %s", o.policy)
		}
		if deployedModel(p) == "" && firstNonEmpty(o.modelDigest, p.Deploy.ModelDigest) == "" {
			return usageErr("--server: name the model being deployed with --model-digest, deploy.model or deploy.model_digest in %s", o.policy)
		}
		if status, err = client.DeploymentStatus(ctx); err != nil {
			return usageErr("--server: %v", err)
		}
		if !status.Known {
			fmt.Fprintf(g.stderr, "note: %s has no /v1/deployments/status route (404); deployments are taken as not paused\n", client.URL())
		}
	}

	now := time.Now()
	res := gate.Run(ctx, p, gate.Options{Now: func() time.Time { return now }, FailOn: failOn})
	if status.Paused {
		res.Paused(client.URL(), endpoint, status)
	}
	rep := res.Report(o.policy, checkRules())
	rep.Tool, rep.Version = "pipewarden", g.version

	for _, out := range []struct {
		path   string
		format report.Format
	}{{o.sarif, report.SARIF}, {o.junit, report.JUnit}, {o.json, report.JSON}} {
		if out.path == "" {
			continue
		}
		if err := writeReportFile(out.path, out.format, rep); err != nil {
			return usageErr("%s: %v", out.path, err)
		}
	}
	tableTo := g.stdout
	if format != report.Text {
		tableTo = g.stderr
	}
	if err := report.Write(g.stdout, format, rep); err != nil {
		return err
	}
	if format == report.Text {
		fmt.Fprintln(g.stdout)
	}
	if err := res.WriteTable(tableTo); err != nil {
		return err
	}
	if status.Paused {
		fmt.Fprintf(g.stderr, "deployments are paused by %s: %s\n", client.URL(), firstNonEmpty(status.Reason, "no reason given"))
	}

	if client != nil {
		if err := reportDeploy(ctx, g, client, o, p, res, endpoint, now); err != nil {
			return err
		}
	}
	switch res.Verdict {
	case gate.Error:
		return &exitError{code: report.ExitUsage}
	case gate.Fail:
		return &exitError{code: report.ExitFindings}
	}
	return nil
}

// reportDeploy sends the verdict as a pipewarden.deploy.change event. Failing to deliver it is an
// error (exit 2): a deployment the daemon did not hear of leaves a gap in the audit trail.
func reportDeploy(ctx context.Context, g *globals, c *gate.Client, o *checkOptions, p *gate.Policy, res *gate.Result, endpoint string, now time.Time) error {
	digest := firstNonEmpty(o.modelDigest, p.Deploy.ModelDigest)
	if digest == "" {
		var err error
		if digest, err = gate.ModelDigest(ctx, deployedModel(p)); err != nil {
			return usageErr("--server: %v", err)
		}
	}
	approved := res.Verdict == gate.Pass
	ev, err := gate.DeployChange(endpoint, digest, o.actor, approved, now, map[string]any{
		"verdict": res.Verdict, "policy": o.policy, "findings": len(res.Findings()),
	})
	if err != nil {
		return usageErr("--server: %v", err)
	}
	if err := c.PostEvent(ctx, ev); err != nil {
		return usageErr("--server: the verdict was not recorded: %v", err)
	}
	fmt.Fprintf(g.stderr, "reported %s %s to %s (approved=%t)\n", ev.Type, ev.ID, c.URL(), approved)
	return nil
}

// deployedModel is the model whose digest the deploy event names: deploy.model, else the
// policy's only model; "" when neither says.
func deployedModel(p *gate.Policy) string {
	if p.Deploy.Model != "" {
		return p.Deploy.Model
	}
	if len(p.Models) == 1 {
		return p.Models[0].Path
	}
	return ""
}

func writeReportFile(path string, f report.Format, r *report.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return unwrapPathErr(err)
	}
	if err := report.Write(out, f, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unwrapPathErrKeep shortens an open error of the policy file to "path: reason"; other errors
// already name the file.
func unwrapPathErrKeep(path string, err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %v", path, pe.Err)
	}
	return err
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// checkRules is the SARIF rule metadata of every check kind.
func checkRules() map[string]report.RuleInfo {
	rules := depsRules()
	for id, d := range modelscan.RuleDescriptions() {
		rules[id] = report.RuleInfo{Description: d}
	}
	rules[gate.RuleAllowExpired] = report.RuleInfo{Name: "AllowEntryExpired", Description: "An allow entry of the policy is past its date; the findings it accepted count again."}
	rules[gate.RuleDataUnread] = report.RuleInfo{Name: "DataUnreadable", Description: "A data file could not be read to the end; it is not known to be clean."}
	rules[gate.RuleDeployPaused] = report.RuleInfo{Name: "DeploymentsPaused", Description: "The pipewarden server has paused deployments (a pause_deployments response)."}
	return rules
}
