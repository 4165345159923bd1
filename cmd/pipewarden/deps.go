package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
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
what was added, removed, upgraded or downgraded since the approved lockfile.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := o.judge.parse(); err != nil {
				return err
			}
			r, err := runDepsCheck(o, args)
			if err != nil {
				return err
			}
			return o.judge.emit(g, r)
		},
	}
	cmd.Flags().StringArrayVar(&o.osvDB, "osv-db", nil, "offline OSV database: a directory or zip of OSV JSON/YAML records (repeatable)")
	cmd.Flags().StringVar(&o.baseline, "baseline", "", "the approved lockfile to compare with")
	cmd.Flags().BoolVar(&o.noTyposquats, "no-typosquats", false, "skip the typosquat check")
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
