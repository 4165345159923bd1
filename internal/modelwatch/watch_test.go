package modelwatch_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
	"github.com/pipewarden/pipewarden/internal/signing"
)

func TestWatcherReportsUnapprovedChange(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		files   []string // named by the finding
		changed []string
		missing []string
		extra   []string
	}{
		{"overwrite weights", func(t *testing.T, dir string) {
			put(t, filepath.Join(dir, "weights", "model.safetensors"), []byte("poisoned"))
		}, []string{"weights/model.safetensors"}, []string{"weights/model.safetensors"}, nil, nil},
		{"remove config", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, []string{"config.json"}, nil, []string{"config.json"}, nil},
		{"add a file in a new directory", func(t *testing.T, dir string) {
			put(t, filepath.Join(dir, "extra", "payload.pkl"), []byte("cos\nsystem\n"))
		}, []string{"extra/payload.pkl"}, nil, nil, []string{"extra/payload.pkl"}},
		{"replace by rename", func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, "tokenizer.json.new")
			put(t, tmp, []byte(`{"vocab": ["evil"]}`))
			if err := os.Rename(tmp, filepath.Join(dir, "tokenizer.json")); err != nil {
				t.Fatal(err)
			}
		}, []string{"tokenizer.json"}, []string{"tokenizer.json"}, nil, nil},
		{"replace the whole directory", func(t *testing.T, dir string) {
			other := dir + ".new"
			put(t, filepath.Join(other, "config.json"), []byte(`{"layers": 2}`))
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, dir); err != nil {
				t.Fatal(err)
			}
		}, []string{"tokenizer.json", "weights/model.safetensors"}, nil, []string{"tokenizer.json", "weights/model.safetensors"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, 0)
			dir := newModel(t)
			a := approve(t, m, "fraud", dir)
			rep, c := chanReporter()
			w := startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
				Watches: []modelwatch.Watch{{Name: "fraud", Path: dir}}})
			if s := waitChecked(t, w, "fraud"); s.State != modelwatch.StateApproved || !s.Watching {
				t.Fatalf("before tampering: %+v", s)
			}
			noReport(t, c, 50*time.Millisecond)
			start := time.Now()
			tc.tamper(t, dir)
			r := nextReport(t, c)
			t.Logf("write to report: %v", r.at.Sub(start))
			if len(r.events) != 1 || len(r.findings) != 1 {
				t.Fatalf("want one event and one finding, got %d and %d", len(r.events), len(r.findings))
			}
			f, ev := r.findings[0], r.events[0]
			if f.Rule != modelwatch.RuleUnapprovedChange || f.Severity != finding.Critical || !slices.Contains(f.ATLAS, "AML.T0018") {
				t.Errorf("finding %s %v %v", f.Rule, f.Severity, f.ATLAS)
			}
			if err := f.Validate(); err != nil {
				t.Error(err)
			}
			for _, n := range tc.files {
				if !strings.Contains(f.Title, n) {
					t.Errorf("title %q does not name %s", f.Title, n)
				}
			}
			if got := f.Evidence["files"].([]string); !slices.Equal(got, tc.files) {
				t.Errorf("files %v, want %v", got, tc.files)
			}
			if f.Subject != (finding.Subject{Kind: "model", Name: "fraud"}) || !slices.Equal(f.EventIDs, []string{ev.ID}) {
				t.Errorf("subject %v event ids %v (event %s)", f.Subject, f.EventIDs, ev.ID)
			}
			// The event must be what the API accepts.
			if _, err := event.NewDecoder(event.Limits{}, nil).Decode(ev.Raw); err != nil {
				t.Fatalf("event does not decode: %v\n%s", err, ev.Raw)
			}
			var data struct {
				Model, Version, Digest, Action, Actor string
				Signed                                bool
				Path                                  string
				ApprovedDigest                        string `json:"approved_digest"`
				Changed, Missing, Extra               []string
			}
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			if ev.Type != "pipewarden.model.artifact" || data.Model != "fraud" || data.Action != "changed" || data.Version != "1" ||
				data.ApprovedDigest != a.Digest || data.Digest == a.Digest || data.Path != dir {
				t.Errorf("event %s %+v", ev.Type, data)
			}
			if !slices.Equal(data.Changed, orNil(tc.changed)) || !slices.Equal(data.Missing, orNil(tc.missing)) || !slices.Equal(data.Extra, orNil(tc.extra)) {
				t.Errorf("changed %v missing %v extra %v", data.Changed, data.Missing, data.Extra)
			}
			// The same state is not reported twice.
			noReport(t, c, 200*time.Millisecond)
		})
	}
}

func orNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestWatcherIgnoresGitAndIgnorePathsAndClearsAfterRestore(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	put(t, filepath.Join(dir, "runs", "log.txt"), []byte("epoch 1"))
	if _, err := m.Approve(t.Context(), modelwatch.ApproveRequest{Name: "fraud", Path: dir, IgnorePaths: []string{"runs"}}); err != nil {
		t.Fatal(err)
	}
	rep, c := chanReporter()
	w := startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
		Watches: []modelwatch.Watch{{Name: "fraud", Path: dir}}})
	waitChecked(t, w, "fraud")
	put(t, filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/other\n"))
	put(t, filepath.Join(dir, "runs", "log.txt"), []byte("epoch 2"))
	noReport(t, c, 300*time.Millisecond)

	cfg := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfg)
	put(t, cfg, []byte(`{"layers": 3}`))
	if r := nextReport(t, c); r.findings[0].Evidence["files"].([]string)[0] != "config.json" {
		t.Fatalf("finding %v", r.findings[0].Title)
	}
	// Restoring the approved bytes clears the state; the same tampering later is reported again.
	put(t, cfg, orig)
	deadline := time.Now().Add(10 * time.Second)
	for w.Statuses()[0].State != modelwatch.StateApproved {
		if time.Now().After(deadline) {
			t.Fatalf("state %+v", w.Statuses()[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	put(t, cfg, []byte(`{"layers": 3}`))
	nextReport(t, c)
}

func TestWatcherPeriodicRehashCatchesWhatInotifyMisses(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	approve(t, m, "fraud", dir)
	// Tampering before the watcher starts is seen by the first full hash.
	put(t, filepath.Join(dir, "config.json"), []byte(`{"layers": 9}`))
	rep, c := chanReporter()
	startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: 20 * time.Millisecond,
		Watches: []modelwatch.Watch{{Name: "fraud", Path: dir}}})
	r := nextReport(t, c)
	if r.findings[0].Evidence["files"].([]string)[0] != "config.json" {
		t.Fatal(r.findings[0].Title)
	}
	// Periodic re-hashes of the same state do not repeat it.
	noReport(t, c, 150*time.Millisecond)
}

func TestWatcherSignatureAndApprovalFindings(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	rep, c := chanReporter()
	verifier, _ := keyPair(t)
	startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
		Watches: []modelwatch.Watch{{Name: "fraud", Path: dir, Verifier: verifier}}})
	r := nextReport(t, c)
	if len(r.findings) != 1 || r.findings[0].Rule != modelwatch.RuleNotApproved {
		t.Fatalf("unapproved model: %+v", r.findings)
	}
	// An approval written (by another process, say) is picked up; unsigned is a finding when a
	// signature is required.
	approve(t, m, "fraud", dir)
	r = nextReport(t, c)
	if len(r.findings) != 1 || r.findings[0].Rule != modelwatch.RuleUnsigned || r.findings[0].Severity != finding.High {
		t.Fatalf("unsigned approval: %+v", r.findings)
	}
}

func TestWatcherVerifiesTheApprovedSignature(t *testing.T) {
	dir := newModel(t)
	verifier, signer := keyPair(t)
	other, _ := keyPair(t)
	sig := signModel(t, dir, signer)
	tests := []struct {
		name     string
		verifier signing.Verifier
		want     string // rule, or "" for no finding
	}{
		{"trusted key", verifier, ""},
		{"another key", other, modelwatch.RuleSignatureInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, 0)
			a, err := m.Approve(t.Context(), modelwatch.ApproveRequest{Name: "fraud", Path: dir, Signature: sig, Verifier: verifier})
			if err != nil {
				t.Fatal(err)
			}
			if !a.Signed() || a.Signer == "" {
				t.Fatalf("approval not signed: %q", a.Signer)
			}
			rep, c := chanReporter()
			w := startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
				Watches: []modelwatch.Watch{{Name: "fraud", Path: dir, Verifier: tc.verifier}}})
			s := waitChecked(t, w, "fraud")
			if tc.want == "" {
				if s.Signer == "" {
					t.Errorf("status has no signer: %+v", s)
				}
				noReport(t, c, 100*time.Millisecond)
				return
			}
			r := nextReport(t, c)
			if len(r.findings) != 1 || r.findings[0].Rule != tc.want || r.findings[0].Severity != finding.Critical {
				t.Fatalf("findings %+v", r.findings)
			}
		})
	}
}

func TestWatcherFollowsRollback(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	approve(t, m, "fraud", dir)
	rep, c := chanReporter()
	w := startWatcher(t, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
		Watches: []modelwatch.Watch{{Name: "fraud", Path: dir}}})
	waitChecked(t, w, "fraud")
	weights := filepath.Join(dir, "weights", "model.safetensors")
	put(t, weights, []byte("poisoned"))
	nextReport(t, c)
	res, err := m.Rollback(t.Context(), "fraud")
	if err != nil || !res.Verified {
		t.Fatal(err, res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Statuses()[0].State != modelwatch.StateApproved {
		if time.Now().After(deadline) {
			t.Fatalf("after rollback: %+v", w.Statuses()[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The restored tree is a new directory: the watcher must watch it, not the quarantined one.
	put(t, filepath.Join(res.Quarantine, "tree", "config.json"), []byte("evidence edited"))
	noReport(t, c, 200*time.Millisecond)
	put(t, weights, []byte("poisoned again"))
	r := nextReport(t, c)
	if r.findings[0].Evidence["files"].([]string)[0] != "weights/model.safetensors" {
		t.Fatal(r.findings[0].Title)
	}
}
