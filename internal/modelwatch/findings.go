package modelwatch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/signing"
)

// Finding rule ids.
const (
	RuleUnapprovedChange = "modelwatch.unapproved-change"
	RuleNotApproved      = "modelwatch.not-approved"
	RuleUnsigned         = "modelwatch.unsigned"
	RuleSignatureInvalid = "modelwatch.signature-invalid"
	RuleRollbackFailed   = "modelwatch.rollback-unverified"
)

// EventSource is the CloudEvents source of the events the watcher emits.
const EventSource = "pipewarden/modelwatch"

var (
	atlasTags = []string{"AML.T0018"}
	owaspTags = []string{"ML10:2023"}
)

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// artifactEvent builds a pipewarden.model.artifact event through the event decoder, so it is
// exactly what the API would accept.
func artifactEvent(dec *event.Decoder, action, model, version, digest, actor, dir string, signed bool, extra map[string]any, now time.Time) (event.Event, error) {
	data := map[string]any{
		"model": model, "version": version, "digest": digest, "action": action,
		"actor": actor, "signed": signed, "path": dir,
	}
	for k, v := range extra {
		data[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"specversion": event.SpecVersion, "id": newID(), "source": EventSource,
		"type": "pipewarden.model.artifact", "time": now.UTC().Format(time.RFC3339Nano),
		"subject": model, "data": data,
	})
	if err != nil {
		return event.Event{}, err
	}
	evs, err := dec.Decode(b)
	if err != nil {
		return event.Event{}, fmt.Errorf("model %s: build %s event: %w", model, action, err)
	}
	return evs[0], nil
}

// ApprovalEvent is the pipewarden.model.artifact event (action registered) that records an
// approval, for the daemon to store and audit.
func ApprovalEvent(a *Approval) (event.Event, error) {
	return artifactEvent(event.NewDecoder(event.Limits{}, nil), "registered", a.Model, strconv.Itoa(a.Version), a.Digest,
		a.Approver, a.Path, a.Signed(), map[string]any{"files": len(a.Files), "signer": a.Signer}, a.Time)
}

// changeReport is the event and the critical finding for a model that deviates from its approval.
func changeReport(dec *event.Decoder, name, dir string, a *Approval, d Deviation, actual *signing.Manifest, now time.Time) (event.Event, finding.Finding, error) {
	names := make([]string, 0, len(d.Changed))
	for _, c := range d.Changed {
		names = append(names, c.Name)
	}
	extra := map[string]any{
		"approved_version": a.Version, "approved_digest": a.Digest,
		"changed": orEmpty(names), "missing": orEmpty(d.Missing), "extra": orEmpty(d.Extra), "unverifiable": orEmpty(d.Unverifiable),
	}
	digest := digestString(actual.RootDigest())
	ev, err := artifactEvent(dec, "changed", name, strconv.Itoa(a.Version), digest, "unknown", dir, a.Signed(), extra, now)
	if err != nil {
		return event.Event{}, finding.Finding{}, err
	}
	files := d.Files()
	title := fmt.Sprintf("model %s changed without approval: %s differ from approved version %d", name, plural(len(files), "file"), a.Version)
	if d.RootMissing {
		title = fmt.Sprintf("model %s: directory %s is gone (approved version %d)", name, dir, a.Version)
	}
	title += ": " + describe(d)
	loc := dir
	if len(files) > 0 && files[0] != "." {
		loc = filepath.Join(dir, filepath.FromSlash(files[0]))
	}
	f := finding.Finding{
		Rule: RuleUnapprovedChange, Severity: finding.Critical, Title: title,
		Subject: finding.Subject{Kind: "model", Name: name},
		Labels:  map[string]string{"model": name, "path": dir},
		Evidence: map[string]any{
			"path": dir, "approved_version": a.Version, "approved_digest": a.Digest,
			"approved_by": a.Approver, "approved_at": a.Time, "actual_digest": digest,
			"changed": d.Changed, "missing": d.Missing, "extra": d.Extra, "unverifiable": d.Unverifiable,
			"root_missing": d.RootMissing, "files": files,
		},
		ATLAS: atlasTags, OWASP: owaspTags, EventIDs: []string{ev.ID},
		Confidence: 1, Time: now, Location: &finding.Location{Path: loc},
	}
	return ev, f, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// describe lists the deviating files with what happened to each, the first ten of them.
func describe(d Deviation) string {
	var parts []string
	for _, c := range d.Changed {
		parts = append(parts, c.Name+" (changed)")
	}
	for _, n := range d.Missing {
		parts = append(parts, n+" (missing)")
	}
	for _, n := range d.Extra {
		parts = append(parts, n+" (extra)")
	}
	for _, n := range d.Unverifiable {
		parts = append(parts, n+" (unverifiable)")
	}
	if len(parts) > 10 {
		parts = append(parts[:10], fmt.Sprintf("and %d more", len(parts)-10))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func modelFinding(rule string, sev finding.Severity, name, dir, title string, ev map[string]any, now time.Time) finding.Finding {
	return finding.Finding{
		Rule: rule, Severity: sev, Title: title,
		Subject:  finding.Subject{Kind: "model", Name: name},
		Labels:   map[string]string{"model": name, "path": dir},
		Evidence: ev, ATLAS: atlasTags, OWASP: owaspTags,
		Confidence: 1, Time: now, Location: &finding.Location{Path: dir},
	}
}

// RollbackFindings turns a rollback that could not be verified into a critical finding; a
// verified rollback has none.
func (r *RollbackResult) Findings() []finding.Finding {
	if r.Verified {
		return nil
	}
	ev := map[string]any{"version": r.Version, "digest": r.Digest, "quarantine": r.Quarantine}
	files := []string{}
	if r.Remaining != nil {
		files = r.Remaining.Files()
		ev["remaining"] = r.Remaining
	}
	return []finding.Finding{modelFinding(RuleRollbackFailed, finding.Critical, r.Model, r.Path,
		fmt.Sprintf("model %s still differs from approved version %d after rollback: %s", r.Model, r.Version, strings.Join(files, ", ")), ev, r.Time)}
}

// checkSignature verifies an approval's signature with v: the bundle must verify and its
// statement must vouch for the approved files.
func checkSignature(a *Approval, v signing.Verifier) (signer string, err error) {
	b, err := signing.ParseBundle(a.Signature)
	if err != nil {
		return "", err
	}
	signer, err = v.Verify(b)
	if err != nil {
		return "", err
	}
	if b.DSSEEnvelope == nil {
		return "", fmt.Errorf("%w: no DSSE envelope", signing.ErrBundle)
	}
	signed, err := signing.DecodeStatement(b.DSSEEnvelope.Payload)
	if err != nil {
		return "", err
	}
	if signed.Serialization.Method == signing.MethodFiles {
		if d := signing.Diff(signed, a.Manifest()); !d.Empty() {
			return "", fmt.Errorf("the signature does not cover the approved files (missing %v, extra %v, %d changed)", d.Missing, d.Extra, len(d.Changed))
		}
	}
	return signer, nil
}
