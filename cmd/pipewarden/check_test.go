package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/gate"
)

const fixturesDir = "../../../shared/fixtures"

// checkPolicy writes a policy to a temporary directory, with a copy of the named picklescan
// fixtures as the model directory "model" beside it, and returns the policy's path.
func checkPolicy(t *testing.T, pickles []string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pickles {
		b, err := os.ReadFile(filepath.Join(fixturesDir, "models/picklescan", p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(model, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	req, err := filepath.Abs(filepath.Join(depsTestdata, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	policy := "models:\n  - path: model\nlockfiles:\n  - path: " + req + "\n    typosquats: false\n" + extra
	path := filepath.Join(dir, ".pipewarden.yml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		pickles []string
		extra   string
		args    []string
		code    int
		stdout  []string
	}{
		{"clean model and lockfile", []string{"benign0_v4.pkl"}, "", nil, 0,
			[]string{"CHECK", "scan", "deps", "PASS", "verdict: PASS (2 check(s): 0 failed, 0 could not run)"}},
		{"malicious model fails", []string{"benign0_v4.pkl", "malicious0.pkl"}, "", nil, 1,
			[]string{"malicious0.pkl", "modelscan.pickle.dangerous-import", "FAIL", "verdict: FAIL (2 check(s): 1 failed"}},
		{"per-check fail_on", []string{"benign0_v4.pkl"}, "osv_db: [" + absPath(t, osvFixtures) + "]\n", nil, 1,
			[]string{"PYSEC-2022-43015", "verdict: FAIL"}},
		{"command line fail-on overrides the default", []string{"benign0_v4.pkl"}, "osv_db: [" + absPath(t, osvFixtures) + "]\n",
			[]string{"--fail-on", "critical"}, 0, []string{"PYSEC-2022-43015", "critical", "verdict: PASS"}},
		{"allowlisted advisory", []string{"benign0_v4.pkl"}, "osv_db: [" + absPath(t, osvFixtures) + "]\nallow:\n  - id: PYSEC-2022-43015\n    reason: not reachable\n", nil, 0,
			[]string{"verdict: PASS"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			policy := checkPolicy(t, tc.pickles, tc.extra)
			code, out, errs := runMain(t, append([]string{"check", "--policy", policy}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// One run writes SARIF, JUnit and JSON at once, each holding the same findings.
func TestCheckWritesEveryReport(t *testing.T) {
	policy := checkPolicy(t, []string{"benign0_v4.pkl", "malicious0.pkl"}, "osv_db: ["+absPath(t, osvFixtures)+"]\n")
	dir := t.TempDir()
	sarifPath, junitPath, jsonPath := filepath.Join(dir, "r.sarif"), filepath.Join(dir, "r.xml"), filepath.Join(dir, "r.json")
	code, out, errs := runMain(t, "check", "--policy", policy, "--sarif", sarifPath, "--junit", junitPath, "--json", jsonPath)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var js struct {
		Findings []struct {
			Rule   string            `json:"rule"`
			Labels map[string]string `json:"labels"`
		} `json:"findings"`
		Summary struct {
			Total int `json:"total"`
			Extra struct {
				Verdict string           `json:"verdict"`
				Checks  []map[string]any `json:"checks"`
			} `json:"extra"`
		} `json:"summary"`
	}
	readJSON(t, jsonPath, &js)
	if js.Summary.Extra.Verdict != "fail" || len(js.Summary.Extra.Checks) != 2 || js.Summary.Total == 0 {
		t.Errorf("json summary %+v", js.Summary)
	}
	checks := map[string]string{}
	for _, c := range js.Summary.Extra.Checks {
		checks[c["kind"].(string)] = c["result"].(string)
	}
	if checks["scan"] != "fail" || checks["deps"] != "fail" {
		t.Errorf("checks %v", checks)
	}
	for _, f := range js.Findings {
		if f.Labels["check"] == "" {
			t.Errorf("finding %s has no check label", f.Rule)
		}
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	readJSON(t, sarifPath, &sarif)
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != js.Summary.Total {
		t.Errorf("sarif %s with %d results, json has %d findings", sarif.Version, len(sarif.Runs[0].Results), js.Summary.Total)
	}
	b, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &junit); err != nil {
		t.Fatal(err)
	}
	if junit.Failures != js.Summary.Total || junit.Tests < junit.Failures {
		t.Errorf("junit %d tests %d failures, json %d findings", junit.Tests, junit.Failures, js.Summary.Total)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// With a machine format on stdout, stdout is only that document; the table goes to stderr.
func TestCheckJSONStdoutStaysParseable(t *testing.T) {
	policy := checkPolicy(t, []string{"benign0_v4.pkl"}, "")
	code, out, errs := runMain(t, "check", "--policy", policy, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Errorf("stdout is not JSON: %v\n%s", err, out)
	}
	if !strings.Contains(errs, "verdict: PASS") {
		t.Errorf("stderr lacks the table:\n%s", errs)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("models:\n  - path: m\n    verify: {signature: s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missingInput := filepath.Join(dir, "missing-input.yml")
	if err := os.WriteFile(missingInput, []byte("lockfiles: [{path: nowhere/requirements.txt}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := checkPolicy(t, []string{"benign0_v4.pkl"}, "")
	tests := []struct {
		name   string
		args   []string
		stderr []string
		stdout string
	}{
		{"missing policy", []string{"--policy", filepath.Join(dir, "none.yml")}, []string{"none.yml", "no such file"}, ""},
		{"default policy missing", nil, []string{".pipewarden.yml"}, ""},
		{"invalid policy", []string{"--policy", bad}, []string{"bad.yml", "line 3", "models[0].verify"}, ""},
		{"unreadable input", []string{"--policy", missingInput}, []string{}, "error: deps " + filepath.Join(dir, "nowhere/requirements.txt")},
		{"bad format", []string{"--policy", good, "--format", "xml"}, []string{"--format"}, ""},
		{"bad fail-on", []string{"--policy", good, "--fail-on", "severe"}, []string{"--fail-on"}, ""},
		{"bad server URL", []string{"--policy", good, "--server", "localhost:7700"}, []string{"--server", "http(s)://"}, ""},
		{"server without endpoint", []string{"--policy", good, "--server", "http://127.0.0.1:1"}, []string{"--endpoint", "deploy.endpoint"}, ""},
		{"unwritable report", []string{"--policy", good, "--json", filepath.Join(dir, "no/such/dir/r.json")}, []string{"r.json"}, ""},
		{"arguments", []string{"--policy", good, "extra"}, []string{"unknown command"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runMain(t, append([]string{"check"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q: %s", s, errs)
				}
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout lacks %q: %s", tc.stdout, out)
			}
		})
	}
}

// daemonConf is how a fakeDaemon answers.
type daemonConf struct {
	statusCode int
	statusBody string
	eventsCode int // 0: accept valid events
}

// fakeDaemon is a pipewarden server for --server: a configurable deployments status and an
// events route that validates with the daemon's own decoder.
type fakeDaemon struct {
	daemonConf

	mu     sync.Mutex
	tokens []string
	events []event.Event
}

func (d *fakeDaemon) start(t *testing.T) *httptest.Server {
	dec := event.NewDecoder(event.DefaultLimits(), time.Now)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/deployments/status", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.tokens = append(d.tokens, r.Header.Get("Authorization"))
		d.mu.Unlock()
		w.WriteHeader(d.statusCode)
		io.WriteString(w, d.statusBody)
	})
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.tokens = append(d.tokens, r.Header.Get("Authorization"))
		if d.eventsCode != 0 {
			w.WriteHeader(d.eventsCode)
			io.WriteString(w, `{"error": "store unavailable"}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		evs, err := dec.Decode(b)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		d.events = append(d.events, evs...)
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestCheckServer(t *testing.T) {
	tests := []struct {
		name         string
		daemon       daemonConf
		pickles      []string
		code         int
		stderr       []string
		wantEvent    bool
		wantApproved bool
	}{
		{"not paused and clean", daemonConf{statusCode: 200, statusBody: `{"paused": false}`}, []string{"benign0_v4.pkl"}, 0,
			[]string{"reported pipewarden.deploy.change", "approved=true"}, true, true},
		{"paused", daemonConf{statusCode: 200, statusBody: `{"paused": true, "reason": "critical alert on fraud-model (pause_deployments)"}`}, []string{"benign0_v4.pkl"}, 1,
			[]string{"deployments are paused", "critical alert on fraud-model (pause_deployments)", "approved=false"}, true, false},
		{"not paused but failing", daemonConf{statusCode: 200, statusBody: `{"paused": false}`}, []string{"malicious0.pkl"}, 1,
			[]string{"approved=false"}, true, false},
		{"status route missing", daemonConf{statusCode: 404, statusBody: `{"error": "no route"}`}, []string{"benign0_v4.pkl"}, 0,
			[]string{"note:", "no /v1/deployments/status route (404)", "approved=true"}, true, true},
		{"status fails", daemonConf{statusCode: 503, statusBody: `{"error": "not ready"}`}, []string{"benign0_v4.pkl"}, 2,
			[]string{"--server", "503", "not ready"}, false, false},
		{"unauthorized", daemonConf{statusCode: 401, statusBody: `{"error": "invalid token"}`}, []string{"benign0_v4.pkl"}, 2,
			[]string{"401", "PIPEWARDEN_TOKEN"}, false, false},
		{"event not recorded", daemonConf{statusCode: 200, statusBody: `{"paused": false}`, eventsCode: 503}, []string{"benign0_v4.pkl"}, 2,
			[]string{"verdict was not recorded", "503", "store unavailable"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PIPEWARDEN_TOKEN", "env-token")
			d := &fakeDaemon{daemonConf: tc.daemon}
			srv := d.start(t)
			policy := checkPolicy(t, tc.pickles, "deploy:\n  endpoint: fraud-scoring\n")
			code, out, errs := runMain(t, "check", "--policy", policy, "--server", srv.URL, "--actor", "ci-bot")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			for _, tok := range d.tokens {
				if tok != "Bearer env-token" {
					t.Errorf("Authorization %q, want the PIPEWARDEN_TOKEN token", tok)
				}
			}
			if !tc.wantEvent {
				if len(d.events) != 0 {
					t.Errorf("%d events stored, want none", len(d.events))
				}
				return
			}
			if len(d.events) != 1 || d.events[0].Type != gate.TypeDeployChange || d.events[0].Subject != "fraud-scoring" {
				t.Fatalf("events %+v", d.events)
			}
			data, err := d.events[0].DataMap()
			if err != nil {
				t.Fatal(err)
			}
			digest, err := gate.ModelDigest(context.Background(), filepath.Join(filepath.Dir(policy), "model"))
			if err != nil {
				t.Fatal(err)
			}
			if data["approved"] != tc.wantApproved || data["endpoint"] != "fraud-scoring" || data["actor"] != "ci-bot" || data["model_digest"] != digest {
				t.Errorf("event data %v (model digest %s)", data, digest)
			}
			if tc.name == "paused" && !strings.Contains(out, "deployments  "+srv.URL) {
				t.Errorf("the table has no deployments row:\n%s", out)
			}
		})
	}
}

func TestCheckServerFlagsOverridePolicy(t *testing.T) {
	d := &fakeDaemon{daemonConf: daemonConf{statusCode: 200, statusBody: `{"paused": false}`}}
	srv := d.start(t)
	policy := checkPolicy(t, []string{"benign0_v4.pkl"}, "deploy:\n  endpoint: from-policy\n")
	code, _, errs := runMain(t, "check", "--policy", policy, "--server", srv.URL, "--token", "flag-token",
		"--endpoint", "from-flag", "--model-digest", "sha256:feed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, _ := d.events[0].DataMap()
	if d.events[0].Subject != "from-flag" || data["endpoint"] != "from-flag" || data["model_digest"] != "sha256:feed" {
		t.Errorf("event %s %v", d.events[0].Subject, data)
	}
	if d.tokens[0] != "Bearer flag-token" {
		t.Errorf("Authorization %q", d.tokens[0])
	}
}

func TestDepsCheckServer(t *testing.T) {
	dir := t.TempDir()
	project := filepath.Join(dir, "fraud-service")
	approved, current := filepath.Join(dir, "approved.txt"), filepath.Join(project, "requirements.txt")
	if err := os.Mkdir(project, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]string{
		approved: "numpy==1.26.4\nrequests==2.32.3\n",
		current:  "numpy==1.26.0\nrequests==2.32.3\nrich==13.9.4\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := &fakeDaemon{}
	srv := d.start(t)
	code, _, errs := runDeps(t, "--baseline", approved, "--server", srv.URL, "--token", "tok", "--no-typosquats", current)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(d.events) != 1 || d.events[0].Type != gate.TypeDepsChange || d.events[0].Subject != "fraud-service" {
		t.Fatalf("events %+v\nstderr %s", d.events, errs)
	}
	var data struct {
		Project  string `json:"project"`
		Lockfile string `json:"lockfile"`
		Added    []struct {
			Name, Version string
		} `json:"added"`
		Removed []any `json:"removed"`
		Changed []struct {
			Name, From, To, Kind string
		} `json:"changed"`
	}
	if err := json.Unmarshal(d.events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Project != "fraud-service" || data.Lockfile != current || len(data.Added) != 1 || data.Added[0].Name != "rich" ||
		data.Removed == nil || len(data.Removed) != 0 || len(data.Changed) != 1 || data.Changed[0].Kind != "downgraded" {
		t.Errorf("event data %s", d.events[0].Data)
	}
	if !strings.Contains(errs, "1 added, 0 removed, 1 changed") {
		t.Errorf("stderr %s", errs)
	}

	code, _, errs = runDeps(t, "--server", srv.URL, current)
	if code != 2 || !strings.Contains(errs, "--baseline") {
		t.Errorf("--server without --baseline: exit %d %s", code, errs)
	}
	code, _, errs = runDeps(t, "--baseline", approved, "--server", "http://127.0.0.1:1", "--project", "p", current)
	if code != 2 || !strings.Contains(errs, "change was not recorded") {
		t.Errorf("unreachable server: exit %d %s", code, errs)
	}
}
