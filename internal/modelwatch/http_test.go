package modelwatch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/modelwatch"
)

type auditLog []string

func (a *auditLog) Audit(_ context.Context, action string, _ any) error {
	*a = append(*a, action)
	return nil
}

func TestHandler(t *testing.T) {
	m := newManager(t, 0)
	dir := newModel(t)
	verifier, signer := keyPair(t)
	sigPath := filepath.Join(dir, "model.sig")
	put(t, sigPath, signModel(t, dir, signer))
	var audit auditLog
	var reported []event.Event
	h := modelwatch.NewHandler(modelwatch.HandlerOptions{
		Manager: m, Verifier: verifier, AllowedRoots: []string{filepath.Dir(dir)}, Auditor: &audit,
		Principal: func(*http.Request) string { return "token:ci" },
		Reporter: modelwatch.ReporterFunc(func(_ context.Context, evs []event.Event, _ []finding.Finding) error {
			reported = append(reported, evs...)
			return nil
		}),
	})
	do := func(method, target, body string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %d %q", method, target, rec.Code, rec.Body)
		}
		return rec.Code, out
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	tests := []struct {
		name, method, target, body string
		code                       int
		check                      func(t *testing.T, out map[string]any)
	}{
		{"rollback before approval", "POST", "/v1/models/fraud/rollback", "", 404, nil},
		{"bad json", "POST", "/v1/models/fraud/approvals", `{"path":`, 400, nil},
		{"unknown field", "POST", "/v1/models/fraud/approvals", `{"path":"/x","sig":"y"}`, 400, nil},
		{"relative path", "POST", "/v1/models/fraud/approvals", `{"path":"model"}`, 400, nil},
		{"bad name", "POST", "/v1/models/a..b%2Fc/approvals", js(map[string]string{"path": dir}), 400, nil},
		{"outside allowed roots", "POST", "/v1/models/fraud/approvals", `{"path":"/etc"}`, 403, nil},
		{"missing directory", "POST", "/v1/models/fraud/approvals", js(map[string]string{"path": dir + "x"}), 400, nil},
		{"signed approval", "POST", "/v1/models/fraud/approvals", js(map[string]string{"path": dir, "signature": sigPath}), 201,
			func(t *testing.T, out map[string]any) {
				if out["version"] != 1.0 || out["signed"] != true || out["approver"] != "token:ci" || out["files"] != 3.0 {
					t.Errorf("approval %v", out)
				}
			}},
		{"list", "GET", "/v1/models", "", 200, func(t *testing.T, out map[string]any) {
			ms := out["models"].([]any)
			if len(ms) != 1 || ms[0].(map[string]any)["latest"].(map[string]any)["digest"] == "" {
				t.Errorf("list %v", out)
			}
		}},
		{"rollback when approved", "POST", "/v1/models/fraud/rollback", "", 200, func(t *testing.T, out map[string]any) {
			if out["already_approved"] != true || out["verified"] != true {
				t.Errorf("rollback %v", out)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(tc.method, tc.target, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %v", code, tc.code, out)
			}
			if code >= 400 && out["error"] == "" {
				t.Errorf("error body %v", out)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
	put(t, filepath.Join(dir, "config.json"), []byte("tampered"))
	code, out := do("POST", "/v1/models/fraud/rollback", "")
	if code != 200 || out["verified"] != true || len(out["quarantined"].([]any)) != 1 {
		t.Fatalf("rollback %d %v", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(b) != `{"layers": 2}` {
		t.Errorf("not restored: %q", b)
	}
	// The signature file inside the model is ignored and carried over.
	if _, err := os.Stat(sigPath); err != nil {
		t.Error(err)
	}
	if strings.Join(audit, ",") != "model.approve,model.rollback,model.rollback" {
		t.Errorf("audit %v", audit)
	}
	if len(reported) != 1 || !strings.Contains(string(reported[0].Data), `"action":"registered"`) {
		t.Errorf("reported %v", reported)
	}
}
