package alert_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/respond"
	"github.com/pipewarden/pipewarden/internal/store"
)

func TestHTTPRoutes(t *testing.T) {
	cfg := blockConfig(false, true)
	cfg.Responses = append(cfg.Responses, respond.Config{Name: "pause", Type: respond.PauseDeployments, Matchers: []string{`severity="critical"`}})
	h := newHarness(t, cfg)
	mux := http.NewServeMux()
	routes := map[string]string{}
	for _, r := range h.p.Handlers(func(r *http.Request) string { return r.Header.Get("X-User") }) {
		mux.HandleFunc(r.Pattern, r.Handler)
		routes[r.Pattern] = r.Role
	}
	if routes["POST /v1/silences"] != store.RoleResponder || routes["GET /v1/alerts/{id}"] != store.RoleViewer {
		t.Errorf("roles: %v", routes)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-User", "erin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
		return resp.StatusCode, v
	}
	ctx := t.Context()
	h.p.Handle(ctx, []finding.Finding{
		fnd("inference_extraction", finding.High, "client", "k1", t0),
		fnd("model_tampered", finding.Critical, "model", "m1", t0),
	})
	var ext, crit string
	for _, a := range h.alerts("") {
		if a.Rule == "inference_extraction" {
			ext = a.ID
		} else {
			crit = a.ID
		}
	}

	code, body := do("GET", "/v1/alerts/"+ext, "")
	if code != 200 || body["rule"] != "inference_extraction" || len(body["findings"].([]any)) != 1 || body["events"] == nil {
		t.Errorf("get alert: %d %v", code, body)
	}
	steps := []struct {
		name, method, path, body string
		want                     int
		check                    func(map[string]any) bool
	}{
		{"unknown alert", "GET", "/v1/alerts/nope", "", 404, nil},
		{"ack", "POST", "/v1/alerts/" + ext + "/ack", "", 200, func(b map[string]any) bool { return b["state"] == "acknowledged" }},
		{"ack again conflicts", "POST", "/v1/alerts/" + ext + "/ack", "", 409, nil},
		{"false positive without comment", "POST", "/v1/alerts/" + ext + "/false-positive", `{}`, 400, nil},
		{"unknown field", "POST", "/v1/alerts/" + ext + "/resolve", `{"coment":"x"}`, 400, nil},
		{"false positive", "POST", "/v1/alerts/" + ext + "/false-positive", `{"comment":"load test"}`, 200,
			func(b map[string]any) bool { return b["state"] == "false_positive" && b["comment"] == "load test" }},
		{"silence", "POST", "/v1/silences", `{"matchers":["rule=\"noisy\""],"duration":"1h","comment":"deploy"}`, 201,
			func(b map[string]any) bool { return b["created_by"] == "erin" && b["state"] == "active" }},
		{"bad silence", "POST", "/v1/silences", `{"matchers":["rule"],"comment":"x"}`, 400, nil},
		{"list silences", "GET", "/v1/silences?state=active", "", 200, func(b map[string]any) bool { return len(b["items"].([]any)) == 1 }},
		{"bad state", "GET", "/v1/silences?state=weird", "", 400, nil},
		{"expire unknown silence", "DELETE", "/v1/silences/nope", "", 404, nil},
		{"pending actions", "GET", "/v1/actions?status=pending_approval", "", 200, func(b map[string]any) bool { return len(b["items"].([]any)) == 1 }},
		{"deployments paused by the critical alert", "GET", "/v1/deployments/status", "", 200,
			func(b map[string]any) bool { return b["paused"] == true && b["alert_id"] == crit }},
		{"resume", "POST", "/v1/deployments/resume", "", 200, func(b map[string]any) bool { return b["paused"] == false }},
		{"status", "GET", "/v1/alerting/status", "", 200, func(b map[string]any) bool { return b["findings"] == 2.0 && b["suppressed"] != nil }},
		{"feedback", "GET", "/v1/alerting/feedback?min=1", "", 200, func(b map[string]any) bool { return len(b["proposals"].([]any)) == 1 }},
		{"bad min", "GET", "/v1/alerting/feedback?min=-1", "", 400, nil},
		{"approve unknown", "POST", "/v1/actions/nope/approve", "", 404, nil},
	}
	for _, s := range steps {
		code, body := do(s.method, s.path, s.body)
		if code != s.want || (s.check != nil && !s.check(body)) {
			t.Errorf("%s: %d %v; want %d", s.name, code, body, s.want)
		}
		if code >= 400 && body["error"] == nil {
			t.Errorf("%s: error body without error: %v", s.name, body)
		}
	}
	_, sl := do("GET", "/v1/silences", "")
	id := sl["items"].([]any)[0].(map[string]any)["id"].(string)
	if code, body := do("DELETE", "/v1/silences/"+id, ""); code != 200 || body["state"] != "expired" {
		t.Errorf("expire: %d %v", code, body)
	}
	_, acts := do("GET", "/v1/actions?status=pending_approval", "")
	actID := acts["items"].([]any)[0].(map[string]any)["id"].(string)
	if code, body := do("POST", "/v1/actions/"+actID+"/approve", ""); code != 200 || body["status"] != "failed" || body["approved_by"] != "erin" {
		// No gateway is connected in this test: the approved action runs and fails visibly.
		t.Errorf("approve: %d %v", code, body)
	}
}
