package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/audit"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/report"
)

const defaultDataDir = "./pipewarden-data"

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, and export evidence from, the tamper-evident audit log",
		Long: `The daemon records every event, finding, alert change, notification, response, silence,
configuration reload, token change and state-changing API call in an append-only log under an
RFC 6962 Merkle tree with signed checkpoints (docs/audit.md). These commands check it and
export evidence from it; they work offline, on the data directory or on an exported bundle.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(g), newAuditKeyCmd(g), newAuditExportCmd(g))
	return cmd
}

type auditVerifyOptions struct {
	judge   judgeFlags
	data    string
	server  string
	token   string
	bundle  string
	witness string
	key     string
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var o auditVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify [--data DIR | --server URL | --bundle DIR] [--witness FILE] [--key VKEY]",
		Short: "Recompute the audit log's tree and check it against every signed and witnessed checkpoint",
		Long: `Verify recomputes the Merkle tree from the stored records, checks every checkpoint's
signature and that each extends the one before it, compares the tree with the checkpoints a
witness saw (--witness), and names each place where records and checkpoints disagree, by record
index and kind: modified, deleted, inserted, reordered, truncated, rollback, rewritten, fork,
key-changed, bad-signature. Exit 0 when everything agrees, 1 otherwise, 2 when the input
cannot be read.

Sources: --data (the daemon's data directory or its audit/ directory; the default is
./pipewarden-data), --server (a running daemon's API; --token for its viewer token), or
--bundle (a directory written by 'pipewarden audit export', verified offline).

Trust: --key pins the log's public key (from 'pipewarden audit key'); otherwise the witness
file's key is used, and failing that the log's own key, which a forger could replace too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runAuditVerify(cmd, g, &o) },
	}
	o.judge.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory (default ./pipewarden-data)")
	f.StringVar(&o.server, "server", "", "verify a running server through its API, e.g. http://127.0.0.1:7700")
	f.StringVar(&o.token, "token", "", "bearer token for --server (viewer role)")
	f.StringVar(&o.bundle, "bundle", "", "verify an evidence bundle written by 'audit export'")
	f.StringVar(&o.witness, "witness", "", "witness file: the checkpoints published to another place")
	f.StringVar(&o.key, "key", "", "the log's public key (verifier string), or @FILE to read it")
	return cmd
}

func runAuditVerify(cmd *cobra.Command, g *globals, o *auditVerifyOptions) error {
	format, _, err := o.judge.parse()
	if err != nil {
		return err
	}
	set := 0
	for _, s := range []string{o.data, o.server, o.bundle} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return usageErr("audit verify: give one of --data, --server and --bundle")
	}
	var opts audit.VerifyOptions
	if opts.Key, err = readKeyFlag(o.key); err != nil {
		return err
	}
	if o.witness != "" {
		f, err := os.Open(o.witness)
		if err != nil {
			return usageErr("%s: %v", o.witness, err)
		}
		ws, err := audit.ReadWitness(f)
		f.Close()
		if err != nil {
			return usageErr("%s: %v", o.witness, err)
		}
		opts.Witness = &ws
	}
	var res *audit.Result
	var source string
	switch {
	case o.server != "":
		source = o.server
		res, err = audit.VerifyRemote(cmd.Context(), audit.Remote{BaseURL: o.server, Token: o.token, Client: &http.Client{Timeout: 2 * time.Minute}}, opts)
	case o.bundle != "":
		source = o.bundle
		res, err = audit.VerifyBundle(o.bundle, opts)
	default:
		source = o.data
		if source == "" {
			source = defaultDataDir
		}
		res, err = audit.VerifyDir(source, opts)
	}
	if err != nil {
		return usageErr("%s: %v", source, err)
	}
	r := &report.Report{Command: "audit verify", Inputs: []string{source}, Extra: map[string]any{
		"records": res.Records, "checkpoints": res.Checkpoints, "witnessed": res.Witnessed,
		"key": res.Key, "key_source": res.KeySource, "first_index": res.FirstIndex(),
	}}
	if len(res.Notes) > 0 {
		r.Extra["notes"] = res.Notes
	}
	now := time.Now().UTC()
	for _, p := range res.Problems {
		r.Findings = append(r.Findings, finding.Finding{
			Rule: "audit." + p.Kind, Severity: finding.Critical, Title: p.String(),
			Subject: finding.Subject{Kind: "audit-log", Name: source}, Confidence: 1, Time: now,
			Evidence: map[string]any{"index": p.Index, "problem": p.Kind, "record_kind": string(p.RecordKind), "detail": p.Detail},
		})
	}
	if format == report.Text {
		verdict := "verified"
		if !res.OK() {
			verdict = fmt.Sprintf("FAILED at index %d", res.FirstIndex())
			if res.FirstIndex() < 0 {
				verdict = "FAILED"
			}
		}
		fmt.Fprintf(g.stdout, "audit log %s: %s: %d records, %d checkpoints, %d witnessed; key %s (%s)\n",
			source, verdict, res.Records, res.Checkpoints, res.Witnessed, shortKey(res.Key), res.KeySource)
		for _, n := range res.Notes {
			fmt.Fprintf(g.stdout, "note: %s\n", n)
		}
	}
	return o.judge.emit(g, r)
}

// readKeyFlag reads --key: a verifier string, or @FILE holding one.
func readKeyFlag(v string) (string, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageErr("%s: %v", path, err)
		}
		v = strings.TrimSpace(string(b))
	}
	if v != "" && strings.Count(v, "+") < 2 {
		return "", usageErr("--key %q: want a verifier key as printed by 'pipewarden audit key' (name+hash+key)", v)
	}
	return v, nil
}

func shortKey(k string) string {
	if parts := strings.SplitN(k, "+", 3); len(parts) == 3 {
		return parts[0] + "+" + parts[1]
	}
	return k
}

func newAuditKeyCmd(g *globals) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "key [--data DIR]",
		Short: "Print the audit log's public key (the verifier string auditors pin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				data = defaultDataDir
			}
			k, err := audit.ReadPublicKey(audit.LogDir(data))
			if err != nil {
				return usageErr("%s: no audit key (the daemon creates it at first start): %v", data, err)
			}
			fmt.Fprintln(g.stdout, k)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data directory (default ./pipewarden-data)")
	return cmd
}

type auditExportOptions struct {
	data, from, to, out string
}

func newAuditExportCmd(g *globals) *cobra.Command {
	var o auditExportOptions
	cmd := &cobra.Command{
		Use:   "export --out DIR [--from T] [--to T] [--data DIR]",
		Short: "Write a self-contained evidence bundle for a period: records, proofs, key, HTML report",
		Long: `Export writes the audit records whose time is in [--from, --to) (RFC 3339 or YYYY-MM-DD;
default: the whole log up to now), with an inclusion proof of each against the last signed
checkpoint, the checkpoints and consistency proofs, the public key, VERIFY.txt and report.html
(one file, no external assets: assets monitored per stage, findings and alerts by severity and
stage, response times, actions, changes, and a control map to NIST AI RMF, ISO/IEC 42001 and
the EU AI Act pointing at record indexes), under a manifest signed with the log's key. It
reads the data directory only, so it can run beside the daemon. The bundle verifies offline
with 'pipewarden audit verify --bundle DIR'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runAuditExport(g, &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory (default ./pipewarden-data)")
	f.StringVar(&o.from, "from", "", "start of the period (inclusive)")
	f.StringVar(&o.to, "to", "", "end of the period (exclusive; default now)")
	f.StringVar(&o.out, "out", "", "bundle directory to create (must not exist or be empty)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func parseWhen(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr("--%s %q: want RFC 3339 (2025-03-01T12:00:00Z) or a date (2025-03-01)", flag, v)
}

func runAuditExport(g *globals, o *auditExportOptions) error {
	from, err := parseWhen("from", o.from)
	if err != nil {
		return err
	}
	to, err := parseWhen("to", o.to)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return usageErr("--from %s is not before --to %s", o.from, o.to)
	}
	data := o.data
	if data == "" {
		data = defaultDataDir
	}
	res, err := audit.Export(data, audit.ExportOptions{From: from, To: to, Out: o.out})
	if err != nil {
		return usageErr("%s: %v", data, err)
	}
	fmt.Fprintf(g.stdout, "wrote %s: records %d to %d (%d), each proven against the checkpoint of size %d\n",
		res.Out, res.First, res.Next-1, res.Next-res.First, res.TreeSize)
	if res.Uncovered > 0 {
		fmt.Fprintf(g.stdout, "note: %d records of the period came after the last checkpoint and are not in the bundle\n", res.Uncovered)
	}
	fmt.Fprintf(g.stdout, "verify: pipewarden audit verify --bundle %s --key '%s'\n", res.Out, res.Result.Key)
	return nil
}
