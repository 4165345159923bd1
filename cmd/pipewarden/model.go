package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/report"
	"github.com/pipewarden/pipewarden/internal/signing"
)

func newModelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Approve model versions, see what the watcher saw, roll back unapproved changes",
		Long: `The model commands work directly on the data directory (the daemon need not run): approvals
are kept in <data>/models/approvals, the approved files in a content-addressed store in
<data>/models/cas, tampered files moved aside by a rollback in <data>/models/quarantine.`,
	}
	cmd.AddCommand(newModelApproveCmd(g), newModelRollbackCmd(g), newModelStatusCmd(g), newModelWatchCmd(g))
	return cmd
}

// modelStore are the flags locating the data directory.
type modelStore struct {
	daemon   daemonFlags
	casLimit int64
}

func (s *modelStore) add(cmd *cobra.Command) {
	s.daemon.add(cmd, false)
}

func (s *modelStore) open() (*modelwatch.Manager, error) {
	cfg, err := s.daemon.load()
	if err != nil {
		return nil, err
	}
	m, err := modelwatch.Open(modelwatch.Options{DataDir: cfg.DataDir, CASMaxBytes: s.casLimit})
	if err != nil {
		return nil, usageErr("%s: %v", cfg.DataDir, err)
	}
	return m, nil
}

type modelApproveOptions struct {
	judge       judgeFlags
	store       modelStore
	name        string
	signature   string
	trust       verifyOptions
	ignorePaths []string
	approver    string
}

func newModelApproveCmd(g *globals) *cobra.Command {
	var o modelApproveOptions
	cmd := &cobra.Command{
		Use:   "approve DIR --name NAME [--signature SIG (--key PUB | --cert-chain CA.pem)] [--data DIR]",
		Short: "Record the model in DIR as the next approved version of NAME",
		Long: `Approve hashes every file of the model directory (as OpenSSF Model Signing does; .git and the
--ignore-paths are left out), records the manifest with who approved it and when as the next
version of NAME, and keeps a copy of every file in the content-addressed store of the data
directory, from which 'pipewarden model rollback' restores it.

With --signature the model must first verify against that OMS signature with --key or
--cert-chain (or --trusted-root, --identity and --issuer): a signature that does not verify, or
files that differ from it, are findings and nothing is approved (exit 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelApprove(cmd, g, args[0], &o)
		},
	}
	o.judge.add(cmd)
	o.store.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "the model name approvals are recorded under")
	f.StringVar(&o.signature, "signature", "", "an OMS signature file the model must verify against")
	f.StringVar(&o.trust.key, "key", "", "the signer's public key (PEM), with --signature")
	f.StringArrayVar(&o.trust.certChain, "cert-chain", nil, "trusted CA certificates (PEM; repeatable), with --signature")
	f.StringVar(&o.trust.trustedRoot, "trusted-root", "", "Sigstore trusted root JSON, with --signature, for keyless bundles")
	f.StringVar(&o.trust.identity, "identity", "", "expected signer identity, with --trusted-root")
	f.StringVar(&o.trust.issuer, "issuer", "", "expected OIDC issuer, with --trusted-root")
	f.StringArrayVar(&o.ignorePaths, "ignore-paths", nil, "paths left out of the approval and of watching (repeatable)")
	f.StringVar(&o.approver, "approver", "", "who approves (default: the current user)")
	f.Int64Var(&o.store.casLimit, "cas-max-bytes", 0, fmt.Sprintf("cap of the content-addressed store (default %d)", int64(modelwatch.DefaultCASMaxBytes)))
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func runModelApprove(cmd *cobra.Command, g *globals, dir string, o *modelApproveOptions) error {
	format, _, err := o.judge.parse()
	if err != nil {
		return err
	}
	if err := modelwatch.ValidName(o.name); err != nil {
		return usageErr("--name: %v", err)
	}
	trustGiven := o.trust.key != "" || len(o.trust.certChain) > 0 || o.trust.trustedRoot != ""
	if o.signature == "" && trustGiven {
		return usageErr("model approve: --key, --cert-chain and --trusted-root go with --signature")
	}
	if fi, err := os.Stat(dir); err != nil {
		return usageErr("%s: %v", dir, err)
	} else if !fi.IsDir() {
		return usageErr("%s: not a directory (approve the directory that holds the model)", dir)
	}
	ignore := o.ignorePaths
	req := modelwatch.ApproveRequest{Name: o.name, Path: dir, Approver: o.approver}
	if req.Approver == "" {
		if u, err := user.Current(); err == nil {
			req.Approver = u.Username
		}
	}
	if o.signature != "" {
		if !trustGiven {
			return usageErr("model approve: --signature needs one of --key, --cert-chain or --trusted-root")
		}
		sig, err := os.ReadFile(o.signature)
		if err != nil {
			return usageErr("%s: %v", o.signature, err)
		}
		if req.Verifier, err = o.trust.verifier(); err != nil {
			return err
		}
		req.Signature = sig
		ignore = append(append([]string(nil), ignore...), o.signature)
	}
	if req.IgnorePaths, err = signing.ResolveIgnorePaths(dir, ignore); err != nil {
		return usageErr("%s: %v", dir, err)
	}
	m, err := o.store.open()
	if err != nil {
		return err
	}
	a, err := m.Approve(cmd.Context(), req)
	var se *modelwatch.SignatureError
	if errors.As(err, &se) {
		return o.judge.emit(g, &report.Report{Command: "model approve", Inputs: []string{dir, o.signature},
			Findings: se.Result.Findings(), Extra: map[string]any{"approved": false, "model": o.name}})
	}
	if err != nil {
		return usageErr("%v", err)
	}
	v := a.View()
	if format == report.Text {
		signed := "unsigned"
		if a.Signed() {
			signed = "signed by " + a.Signer
		}
		fmt.Fprintf(g.stdout, "approved %s version %d (%s): %d files, %d bytes, %s, by %s\n",
			a.Model, a.Version, a.Digest, v.Files, v.Bytes, signed, a.Approver)
	}
	return o.judge.emit(g, &report.Report{Command: "model approve", Inputs: []string{dir},
		Extra: map[string]any{"approved": true, "approval": v, "data": filepath.Dir(m.Dir())}})
}

func newModelRollbackCmd(g *globals) *cobra.Command {
	var judge judgeFlags
	var store modelStore
	cmd := &cobra.Command{
		Use:   "rollback NAME [--data DIR]",
		Short: "Restore the last approved version of a model, quarantining the tampered files",
		Long: `Rollback compares the model's directory with its last approved version. When they differ it
writes the approved files from the content-addressed store into a new directory beside the
model, syncs it, swaps it with the model directory in one atomic rename, moves the tampered
tree into <data>/models/quarantine/<time>-NAME/ (nothing is deleted), and verifies the result.
A model that matches already is left alone. A result that does not verify is a critical
finding (exit 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, _, err := judge.parse()
			if err != nil {
				return err
			}
			if err := modelwatch.ValidName(args[0]); err != nil {
				return usageErr("%v", err)
			}
			m, err := store.open()
			if err != nil {
				return err
			}
			res, err := m.Rollback(cmd.Context(), args[0])
			if res == nil {
				return usageErr("%v", err)
			}
			if format == report.Text {
				switch {
				case res.AlreadyApproved:
					fmt.Fprintf(g.stdout, "model %s already matches approved version %d (%s); nothing to do\n", res.Model, res.Version, res.Digest)
				default:
					fmt.Fprintf(g.stdout, "model %s rolled back to approved version %d (%s) in %s: %s\ntampered files kept in %s\n",
						res.Model, res.Version, res.Digest, res.Path, strings.Join(res.Quarantined, ", "), res.Quarantine)
				}
			}
			return judge.emit(g, &report.Report{Command: "model rollback", Inputs: []string{res.Path},
				Findings: res.Findings(), Extra: map[string]any{"rollback": res}})
		},
	}
	judge.add(cmd)
	store.add(cmd)
	return cmd
}

func newModelStatusCmd(g *globals) *cobra.Command {
	var store modelStore
	var format string
	cmd := &cobra.Command{
		Use:   "status [--data DIR]",
		Short: "List approved models and what the watcher last saw",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageErr("--format: unknown format %q (want text or json)", format)
			}
			m, err := store.open()
			if err != nil {
				return err
			}
			st, err := m.Status()
			if err != nil {
				return usageErr("%v", err)
			}
			var models []modelwatch.ModelStatus
			if st != nil {
				models = st.Models
			}
			list := modelwatch.List(m, models)
			if format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					modelwatch.ModelList
					Watcher *modelwatch.WatchStatus `json:"watcher"`
				}{list, st})
			}
			writeModelStatus(g, list, st)
			return nil
		},
	}
	store.add(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func writeModelStatus(g *globals, list modelwatch.ModelList, st *modelwatch.WatchStatus) {
	if len(list.Models) == 0 {
		fmt.Fprintln(g.stdout, "no approved or watched models")
	} else {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tVERSION\tDIGEST\tAPPROVED\tSIGNED\tWATCH\tLAST CHECK\tPATH")
		for _, v := range list.Models {
			ver, digest, approved, signed, path := "-", "-", "-", "-", "-"
			if a := v.Latest; a != nil {
				ver, digest, path = fmt.Sprint(a.Version), shortDigest(a.Digest), a.Path
				approved = a.Approver + " " + a.Time.Format(time.RFC3339)
				signed = "no"
				if a.Signed {
					signed = "yes"
				}
			}
			state, last := "not watched", "-"
			if w := v.Watch; w != nil {
				state, path = w.State, w.Path
				if w.Deviation != nil {
					state += ": " + strings.Join(w.Deviation.Files(), ",")
				}
				if w.Error != "" {
					state += " (error: " + w.Error + ")"
				}
				if !w.LastCheck.IsZero() {
					last = w.LastCheck.Format(time.RFC3339)
				}
			}
			if v.Error != "" {
				state = "error: " + v.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, ver, digest, approved, signed, state, last, path)
		}
		tw.Flush()
	}
	if st == nil {
		fmt.Fprintln(g.stdout, "the watcher has not run on this data directory")
	} else {
		fmt.Fprintf(g.stdout, "watcher status written %s by pid %d\n", st.Updated.Format(time.RFC3339), st.PID)
	}
}

func shortDigest(d string) string {
	if len(d) > 7+16 {
		return d[:7+16]
	}
	return d
}

func newModelWatchCmd(g *globals) *cobra.Command {
	var store modelStore
	var trust verifyOptions
	var format string
	var rescan, debounce time.Duration
	cmd := &cobra.Command{
		Use:   "watch NAME=DIR... [--data DIR]",
		Short: "Watch model directories in the foreground and print every unapproved change",
		Long: `Watch does what the daemon's model watcher does, in the foreground: it watches each DIR with
inotify (and re-hashes it every --rescan) and prints a finding, as a line of text or of JSON,
whenever the directory stops matching the last approved version of NAME. With --key or
--cert-chain every model must also carry an approved signature that verifies. It runs until
interrupted.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageErr("--format: unknown format %q (want text or json)", format)
			}
			var verifier signing.Verifier
			if trust.key != "" || len(trust.certChain) > 0 || trust.trustedRoot != "" {
				v, err := trust.verifier()
				if err != nil {
					return err
				}
				verifier = v
			}
			var watches []modelwatch.Watch
			for _, a := range args {
				name, dir, ok := strings.Cut(a, "=")
				if !ok {
					return usageErr("%s: want NAME=DIR", a)
				}
				if err := modelwatch.ValidName(name); err != nil {
					return usageErr("%s: %v", a, err)
				}
				watches = append(watches, modelwatch.Watch{Name: name, Path: dir, Verifier: verifier})
			}
			m, err := store.open()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(g.stdout)
			rep := modelwatch.ReporterFunc(func(_ context.Context, evs []event.Event, fs []finding.Finding) error {
				for _, f := range fs {
					if format == "json" {
						if err := enc.Encode(f); err != nil {
							return err
						}
						continue
					}
					if _, err := fmt.Fprintf(g.stdout, "%s %-8s %s  %s  [%s]\n", f.Time.Format(time.RFC3339Nano),
						strings.ToUpper(f.Severity.String()), f.Subject.Name, f.Title, f.Rule); err != nil {
						return err
					}
				}
				return nil
			})
			w, err := modelwatch.NewWatcher(modelwatch.WatcherOptions{Manager: m, Watches: watches, Reporter: rep,
				Rescan: rescan, Debounce: debounce})
			if err != nil {
				return usageErr("%v", err)
			}
			fmt.Fprintf(g.stderr, "watching %d model(s); interrupt to stop\n", len(watches))
			return w.Run(cmd.Context())
		},
	}
	store.add(cmd)
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text or json (one finding per line)")
	f.DurationVar(&rescan, "rescan", 5*time.Minute, "period of the full re-hash")
	f.DurationVar(&debounce, "debounce", 50*time.Millisecond, "quiet time after a change before it is checked")
	f.StringVar(&trust.key, "key", "", "require approved signatures by this public key (PEM)")
	f.StringArrayVar(&trust.certChain, "cert-chain", nil, "require approved signatures chaining to these CA certificates (PEM; repeatable)")
	return cmd
}
