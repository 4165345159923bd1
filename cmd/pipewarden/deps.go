package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gate"
	"github.com/pipewarden/pipewarden/internal/report"
)

func newDepsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deps",
		Short: "Check third-party dependencies",
	}
	cmd.AddCommand(newDepsCheckCmd(g))
	return cmd
}

type depsCheckOptions struct {
	osvDB        []string
	baseline     string
	noTyposquats bool
	server       string
	token        string
	project      string
	judge        judgeFlags
}

func newDepsCheckCmd(g *globals) *cobra.Command {
	var o depsCheckOptions
	cmd := &cobra.Command{
		Use:   "check LOCKFILE...",
		Short: "Check lockfiles against an offline OSV database, for typosquats, pinning and changes",
		Long: `Reads requirements*.txt, poetry.lock, Pipfile.lock, pdm.lock, uv.lock, pylock.toml and conda
environment*.yml files and reports known vulnerabilities and malicious packages (from an offline
OSV database: a directory or osv.dev's PyPI all.zip), likely typosquats of popular packages,
unpinned or hash-less requirements in a project that otherwise pins them, and, with --baseline,
what was added, removed, upgraded or downgraded since the approved lockfile. With --server (and
--baseline), those changes are also sent to the pipewarden daemon as a pipewarden.deps.change
event; the token comes from --token or PIPEWARDEN_TOKEN.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := o.judge.parse(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("token") {
				o.token = os.Getenv("PIPEWARDEN_TOKEN")
			}
			var client *gate.Client
			if o.server != "" {
				if o.baseline == "" {
					return usageErr("--server: give --baseline too: the change event is what differs from the approved lockfile")
				}
				var err error
				if client, err = gate.NewClient(o.server, o.token, nil); err != nil {
					return usageErr("--server: %v", err)
				}
			}
			r, err := runDepsCheck(o, args)
			if err != nil {
				return err
			}
			if client != nil {
				if err := postDepsChange(cmd.Context(), g, client, o, args, r); err != nil {
					return err
				}
			}
			return o.judge.emit(g, r)
		},
	}
	cmd.Flags().StringArrayVar(&o.osvDB, "osv-db", nil, "offline OSV database: a directory or zip of OSV JSON/YAML records (repeatable)")
	cmd.Flags().StringVar(&o.baseline, "baseline", "", "the approved lockfile to compare with")
	cmd.Flags().BoolVar(&o.noTyposquats, "no-typosquats", false, "skip the typosquat check")
	cmd.Flags().StringVar(&o.server, "server", "", "pipewarden server URL: send the changes since --baseline as a pipewarden.deps.change event")
	cmd.Flags().StringVar(&o.token, "token", "", "API token for --server (default $PIPEWARDEN_TOKEN)")
	cmd.Flags().StringVar(&o.project, "project", "", "project name for the event (default the first lockfile's directory name)")
	o.judge.add(cmd)
	return cmd
}

func runDepsCheck(o depsCheckOptions, paths []string) (*report.Report, error) {
	r := &report.Report{Command: "deps check", Inputs: paths, Extra: map[string]any{}, Rules: depsRules()}
	now := time.Now()
	opts := deps.Options{Now: func() time.Time { return now }}
	if !o.noTyposquats {
		opts.Typosquats = deps.DefaultTyposquats()
	}
	if len(o.osvDB) > 0 {
		db, err := deps.LoadOSV(o.osvDB...)
		if err != nil {
			return nil, usageErr("--osv-db: %v", err)
		}
		opts.DB = db
		st := db.Stats()
		r.Extra["advisories"] = st.Records
		if st.Bad > 0 {
			r.Findings = append(r.Findings, finding.Finding{Rule: "deps.osv-db", Severity: finding.Medium, Confidence: 1,
				Title:    fmt.Sprintf("%d of %d OSV database files could not be read; matching may be incomplete", st.Bad, st.Files),
				Subject:  finding.Subject{Kind: "file", Name: o.osvDB[0]},
				Evidence: map[string]any{"errors": st.Errors}})
		}
	} else {
		r.Findings = append(r.Findings, finding.Finding{Rule: "deps.no-osv-db", Severity: finding.Info, Confidence: 1,
			Title:   "no --osv-db given: packages were not checked against vulnerability advisories",
			Subject: finding.Subject{Kind: "file", Name: paths[0]}})
	}
	var all []deps.Package
	packages := 0
	for _, p := range paths {
		lf, err := deps.ParseLockfile(p)
		if err != nil {
			return nil, usageErr("%v", err) // the error names the lockfile
		}
		packages += len(lf.Packages)
		all = append(all, lf.Packages...)
		r.Findings = append(r.Findings, deps.Check(lf, opts)...)
	}
	r.Extra["packages"] = packages
	if o.baseline != "" {
		base, err := deps.ParseLockfile(o.baseline)
		if err != nil {
			return nil, usageErr("--baseline: %v", err)
		}
		if len(base.Problems) > 0 {
			return nil, usageErr("--baseline %s: line %d: %s", o.baseline, base.Problems[0].Location.Line, base.Problems[0].Message)
		}
		ch := deps.Diff(base.Packages, all)
		r.Extra["changes"] = ch
		r.Findings = append(r.Findings, ch.Findings(paths[0], o.baseline, now)...)
	}
	return r, nil
}

// postDepsChange sends the baseline comparison as a pipewarden.deps.change event; a failed
// delivery is an error (exit 2), since the daemon would not know of the change.
func postDepsChange(ctx context.Context, g *globals, c *gate.Client, o depsCheckOptions, paths []string, r *report.Report) error {
	ch, _ := r.Extra["changes"].(deps.Changes)
	project := o.project
	if project == "" {
		abs, err := filepath.Abs(paths[0])
		if err != nil {
			return usageErr("%s: %v", paths[0], err)
		}
		project = filepath.Base(filepath.Dir(abs))
	}
	data := map[string]any{"project": project, "lockfile": strings.Join(paths, ","), "baseline": o.baseline,
		"added": orEmpty(ch.Added), "removed": orEmpty(ch.Removed), "changed": orEmpty(ch.Changed)}
	ev, err := gate.NewEvent(gate.TypeDepsChange, "/pipewarden/deps-check", project, time.Now(), data)
	if err != nil {
		return usageErr("--server: %v", err)
	}
	if err := c.PostEvent(ctx, ev); err != nil {
		return usageErr("--server: the change was not recorded: %v", err)
	}
	fmt.Fprintf(g.stderr, "reported %s %s to %s (%d added, %d removed, %d changed)\n", ev.Type, ev.ID, c.URL(),
		len(ch.Added), len(ch.Removed), len(ch.Changed))
	return nil
}

// orEmpty keeps a nil list a JSON array: the event vocabulary requires arrays.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func depsRules() map[string]report.RuleInfo {
	return map[string]report.RuleInfo{
		deps.RuleVulnerability: {Name: "VulnerableDependency", Description: "A pinned dependency version is covered by an OSV advisory."},
		deps.RuleMalicious:     {Name: "MaliciousPackage", Description: "The package is reported as malicious (OpenSSF MAL- advisory)."},
		deps.RuleTyposquat:     {Name: "Typosquat", Description: "The package name looks like a mutation of a popular package name."},
		deps.RuleUnpinned:      {Name: "UnpinnedRequirement", Description: "A requirement has no exact version in a project that otherwise pins."},
		deps.RuleUnhashed:      {Name: "UnhashedRequirement", Description: "A requirement has no --hash in a project that otherwise uses hashes."},
		deps.RuleUnparsed:      {Name: "UnparsedLockfile", Description: "Part of a lockfile could not be analysed."},
		deps.RuleUnverified:    {Name: "UnverifiedVersion", Description: "A version could not be compared with an advisory's ranges."},
		deps.RuleUnresolved:    {Name: "UnresolvedVersions", Description: "Packages without an exact version were not checked against advisories."},
		deps.RuleAdded:         {Name: "DependencyAdded", Description: "A package was added since the approved lockfile."},
		deps.RuleRemoved:       {Name: "DependencyRemoved", Description: "A package was removed since the approved lockfile."},
		deps.RuleUpgraded:      {Name: "DependencyUpgraded", Description: "A package was upgraded since the approved lockfile."},
		deps.RuleDowngraded:    {Name: "DependencyDowngraded", Description: "A package was downgraded since the approved lockfile."},
		deps.RuleChanged:       {Name: "DependencyChanged", Description: "A package's version changed in a way that does not compare."},
	}
}
