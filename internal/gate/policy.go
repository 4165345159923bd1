// Package gate is the CI/CD gate behind `pipewarden check`: a policy file names the model
// directories to scan and verify, the datasets to check against baselines and the lockfiles to
// check, with a fail-on severity per check and allowlists; Run runs every check and gives one
// verdict, and a Client asks the daemon whether deployments are paused and reports the verdict
// as an event.
package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// Limits of a policy file: it is read from the repository under test, so it is untrusted input.
const (
	MaxPolicyBytes = 1 << 20
	maxEntries     = 1000 // per list
)

// DefaultPolicyFile is the policy `pipewarden check` reads when none is named.
const DefaultPolicyFile = ".pipewarden.yml"

// Policy is a parsed and validated policy file. Paths are resolved against the file's directory.
type Policy struct {
	Path      string           // the policy file, as given ("" for Load)
	Dir       string           // relative paths were resolved against it
	FailOn    finding.Severity // the default of every check
	OSVDB     []string         // offline OSV databases for the lockfile checks
	Models    []Model
	Datasets  []Dataset
	Lockfiles []Lockfile
	Allow     []Allow
	Deploy    Deploy
}

// Model is a model directory (or file) to scan for hidden code and, optionally, to verify
// against its signature.
type Model struct {
	Path   string
	FailOn *finding.Severity // nil: the policy's default
	Scan   bool              // scan the model's files (default true)
	Allow  []string          // extra pickle imports to allow: module.name or module.*
	Verify *Verify           // nil: not verified
	Line   int               // where the entry starts in the policy file
}

// Verify says how a model's OpenSSF Model Signing signature is checked: with the signer's
// public key, or with the CA certificates its certificate must chain to.
type Verify struct {
	Signature           string
	Key                 string
	CertChain           []string
	IgnorePaths         []string
	IgnoreUnsignedFiles bool
	AllowSymlinks       bool
}

// Dataset is a data file checked against an approved baseline.
type Dataset struct {
	Path     string
	Baseline string
	Label    string
	Segment  string
	FailOn   *finding.Severity // nil: the policy's default
	Line     int
}

// Lockfile is a requirements file or lockfile checked for vulnerable, malicious, typosquatted
// and unpinned dependencies and, with a baseline, for what changed since it was approved.
type Lockfile struct {
	Path       string
	Baseline   string
	Typosquats bool              // default true
	FailOn     *finding.Severity // nil: the policy's default
	Line       int
}

// Allow accepts findings: those matching every field given (rule, advisory id, subject glob,
// check target) do not count toward the verdict, but are listed as allowed. An entry past its
// expiry date no longer applies.
type Allow struct {
	Rule    string
	ID      string
	Subject string // a path.Match pattern on the finding's subject name
	Target  string // a check target (resolved like other paths)
	Reason  string
	Expires time.Time // zero: never
	Line    int
}

// Deploy names what the gate's verdict is about when it is reported to the daemon as a
// pipewarden.deploy.change event.
type Deploy struct {
	Endpoint    string
	Model       string // one of Models' paths: its manifest digest is the event's model_digest
	ModelDigest string // given directly instead of Model
}

// The file format. Fields are strings so that every value is validated here with its line.
type rawPolicy struct {
	Version   int           `yaml:"version"`
	FailOn    string        `yaml:"fail_on"`
	OSVDB     []string      `yaml:"osv_db"`
	Models    []rawModel    `yaml:"models"`
	Datasets  []rawDataset  `yaml:"datasets"`
	Lockfiles []rawLockfile `yaml:"lockfiles"`
	Allow     []rawAllow    `yaml:"allow"`
	Deploy    rawDeploy     `yaml:"deploy"`
}

type rawModel struct {
	Path   string     `yaml:"path"`
	FailOn string     `yaml:"fail_on"`
	Scan   *rawScan   `yaml:"scan"`
	Verify *rawVerify `yaml:"verify"`
}

type rawScan struct {
	Skip  bool     `yaml:"skip"`
	Allow []string `yaml:"allow"`
}

type rawVerify struct {
	Signature           string   `yaml:"signature"`
	Key                 string   `yaml:"key"`
	CertChain           []string `yaml:"cert_chain"`
	IgnorePaths         []string `yaml:"ignore_paths"`
	IgnoreUnsignedFiles bool     `yaml:"ignore_unsigned_files"`
	AllowSymlinks       bool     `yaml:"allow_symlinks"`
}

type rawDataset struct {
	Path     string `yaml:"path"`
	Baseline string `yaml:"baseline"`
	Label    string `yaml:"label"`
	Segment  string `yaml:"segment"`
	FailOn   string `yaml:"fail_on"`
}

type rawLockfile struct {
	Path       string `yaml:"path"`
	Baseline   string `yaml:"baseline"`
	Typosquats *bool  `yaml:"typosquats"`
	FailOn     string `yaml:"fail_on"`
}

type rawAllow struct {
	Rule    string `yaml:"rule"`
	ID      string `yaml:"id"`
	Subject string `yaml:"subject"`
	Target  string `yaml:"target"`
	Reason  string `yaml:"reason"`
	Expires string `yaml:"expires"`
}

type rawDeploy struct {
	Endpoint    string `yaml:"endpoint"`
	Model       string `yaml:"model"`
	ModelDigest string `yaml:"model_digest"`
}

// LoadFile reads and validates the policy at path; relative paths in it are resolved against
// its directory. Errors name the file and, where they can, the line.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	p, err := Load(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	p.Path = path
	return p, nil
}

// Load parses and validates policy bytes, resolving relative paths against dir.
func Load(b []byte, dir string) (*Policy, error) {
	if len(b) > MaxPolicyBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxPolicyBytes)
	}
	var raw rawPolicy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty policy: name models, datasets or lockfiles to check")
		}
		return nil, cleanYAMLError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: a policy is one document")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, cleanYAMLError(err)
	}
	v := validator{root: &root, dir: dir}
	p := v.policy(&raw)
	if v.err != nil {
		return nil, v.err
	}
	return p, nil
}

var (
	rawList = regexp.MustCompile(`\[\]gate\.raw\w+`)
	rawType = regexp.MustCompile(`(into )gate\.raw\w+`)
	inType  = regexp.MustCompile(` in type gate\.raw\w+`)
)

func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "yaml: "))
	msg = rawList.ReplaceAllString(msg, "a list")
	msg = rawType.ReplaceAllString(msg, "${1}a mapping")
	msg = inType.ReplaceAllString(msg, " (unknown key; see docs/ci.md)")
	return errors.New(msg)
}

// validator turns the raw file into a Policy, keeping the first error with its line.
type validator struct {
	root *yaml.Node
	dir  string
	err  error
}

func (v *validator) fail(path []any, format string, a ...any) {
	if v.err != nil {
		return
	}
	msg := fmt.Sprintf(format, a...)
	where := fieldPath(path)
	if line := lineOf(v.root, path); line > 0 {
		v.err = fmt.Errorf("line %d: %s: %s", line, where, msg)
		return
	}
	v.err = fmt.Errorf("%s: %s", where, msg)
}

func (v *validator) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.dir, p)
}

// severity parses a fail_on value; nil when it is not given.
func (v *validator) severity(path []any, s string) *finding.Severity {
	if s == "" {
		return nil
	}
	sev, err := finding.ParseSeverity(s)
	if err != nil {
		v.fail(path, "%v", err)
	}
	return &sev
}

func (v *validator) count(name string, n int) {
	if n > maxEntries {
		v.fail([]any{name}, "%d entries, at most %d", n, maxEntries)
	}
}

func (v *validator) policy(raw *rawPolicy) *Policy {
	if raw.Version != 0 && raw.Version != 1 {
		v.fail([]any{"version"}, "unsupported version %d (want 1)", raw.Version)
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"models", len(raw.Models)}, {"datasets", len(raw.Datasets)}, {"lockfiles", len(raw.Lockfiles)},
		{"allow", len(raw.Allow)}, {"osv_db", len(raw.OSVDB)}} {
		v.count(l.name, l.n)
	}
	if len(raw.Models)+len(raw.Datasets)+len(raw.Lockfiles) == 0 {
		v.fail(nil, "nothing to check: name models, datasets or lockfiles")
	}
	p := &Policy{Dir: v.dir, FailOn: finding.High}
	if s := v.severity([]any{"fail_on"}, raw.FailOn); s != nil {
		p.FailOn = *s
	}
	for i, db := range raw.OSVDB {
		if db == "" {
			v.fail([]any{"osv_db", i}, "empty path")
		}
		p.OSVDB = append(p.OSVDB, v.resolve(db))
	}
	for i := range raw.Models {
		p.Models = append(p.Models, v.model(i, &raw.Models[i]))
	}
	for i, d := range raw.Datasets {
		at := []any{"datasets", i}
		if d.Path == "" {
			v.fail(append(at, "path"), "required: the data file to check")
		}
		if d.Baseline == "" {
			v.fail(append(at, "baseline"), "required: the approved baseline (pipewarden data profile --out)")
		}
		p.Datasets = append(p.Datasets, Dataset{Path: v.resolve(d.Path), Baseline: v.resolve(d.Baseline),
			Label: d.Label, Segment: d.Segment, FailOn: v.severity(append(at, "fail_on"), d.FailOn),
			Line: lineOf(v.root, at)})
	}
	for i, l := range raw.Lockfiles {
		at := []any{"lockfiles", i}
		if l.Path == "" {
			v.fail(append(at, "path"), "required: the lockfile or requirements file to check")
		} else if deps.Format(l.Path) == "" {
			v.fail(append(at, "path"), "%q: %v", l.Path, deps.ErrUnsupported)
		}
		lf := Lockfile{Path: v.resolve(l.Path), Baseline: v.resolve(l.Baseline), Typosquats: true,
			FailOn: v.severity(append(at, "fail_on"), l.FailOn), Line: lineOf(v.root, at)}
		if l.Typosquats != nil {
			lf.Typosquats = *l.Typosquats
		}
		p.Lockfiles = append(p.Lockfiles, lf)
	}
	for i, a := range raw.Allow {
		p.Allow = append(p.Allow, v.allow(i, a))
	}
	p.Deploy = Deploy{Endpoint: raw.Deploy.Endpoint, ModelDigest: raw.Deploy.ModelDigest}
	if raw.Deploy.Model != "" {
		if raw.Deploy.ModelDigest != "" {
			v.fail([]any{"deploy", "model"}, "give model or model_digest, not both")
		}
		p.Deploy.Model = v.resolve(raw.Deploy.Model)
		found := false
		for _, m := range p.Models {
			found = found || m.Path == p.Deploy.Model
		}
		if !found {
			v.fail([]any{"deploy", "model"}, "%q is not one of the models", raw.Deploy.Model)
		}
	}
	return p
}

func (v *validator) model(i int, m *rawModel) Model {
	at := []any{"models", i}
	if m.Path == "" {
		v.fail(append(at, "path"), "required: the model directory or file")
	}
	out := Model{Path: v.resolve(m.Path), FailOn: v.severity(append(at, "fail_on"), m.FailOn), Scan: true,
		Line: lineOf(v.root, at)}
	if m.Scan != nil {
		out.Scan = !m.Scan.Skip
		out.Allow = m.Scan.Allow
	}
	if m.Verify != nil {
		vf := m.Verify
		vat := append(at, "verify")
		if vf.Signature == "" {
			v.fail(append(vat, "signature"), "required: the signature file (OpenSSF Model Signing bundle)")
		}
		if (vf.Key == "") == (len(vf.CertChain) == 0) {
			v.fail(vat, "give exactly one of key (the signer's public key) or cert_chain (trusted CA certificates)")
		}
		out.Verify = &Verify{Signature: v.resolve(vf.Signature), Key: v.resolve(vf.Key),
			IgnoreUnsignedFiles: vf.IgnoreUnsignedFiles, AllowSymlinks: vf.AllowSymlinks}
		for _, c := range vf.CertChain {
			out.Verify.CertChain = append(out.Verify.CertChain, v.resolve(c))
		}
		for _, ip := range vf.IgnorePaths {
			out.Verify.IgnorePaths = append(out.Verify.IgnorePaths, v.resolve(ip))
		}
	}
	if !out.Scan && out.Verify == nil {
		v.fail(at, "nothing to do: scan is skipped and there is no verify")
	}
	return out
}

func (v *validator) allow(i int, a rawAllow) Allow {
	at := []any{"allow", i}
	if a.Reason == "" {
		v.fail(append(at, "reason"), "required: say why these findings are accepted")
	}
	if a.Rule == "" && a.ID == "" {
		v.fail(at, "give a rule or an id: an entry must not allow everything")
	}
	if a.Subject != "" {
		if _, err := pathMatch(a.Subject, ""); err != nil {
			v.fail(append(at, "subject"), "bad pattern %q: %v", a.Subject, err)
		}
	}
	out := Allow{Rule: a.Rule, ID: a.ID, Subject: a.Subject, Target: v.resolve(a.Target), Reason: a.Reason,
		Line: lineOf(v.root, at)}
	if a.Expires != "" {
		t, err := time.Parse(time.DateOnly, a.Expires)
		if err != nil {
			v.fail(append(at, "expires"), "%q is not a date (want YYYY-MM-DD)", a.Expires)
		}
		out.Expires = t.AddDate(0, 0, 1) // the entry holds through the day it names (UTC)
	}
	return out
}

// fieldPath renders a path such as models[1].verify.key.
func fieldPath(path []any) string {
	if len(path) == 0 {
		return "policy"
	}
	var b strings.Builder
	for _, e := range path {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

// lineOf finds the line of the node at path (mapping keys and sequence indexes) in a parsed
// document, or of its closest existing ancestor; 0 when there is none.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range path {
		var next *yaml.Node
		switch e := e.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						line = n.Content[i].Line
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && e < len(n.Content) {
				next = n.Content[e]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
