package monitor_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
)

func TestHTTPRegisterAndList(t *testing.T) {
	raw := irisBaseline(t)
	pinned := filepath.Join(t.TempDir(), "pinned.json")
	os.WriteFile(pinned, raw, 0o600)
	m, dir := newMonitor(t, monitor.Config{MaxBaselineBytes: int64(len(raw) + 10),
		Datasets: []monitor.Dataset{{Name: "pinned", Baseline: pinned}}})
	h := m.Handler()
	do := func(method, path string, body []byte) (int, map[string]any) {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, rec.Body.String())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return rec.Code, out
	}
	cases := []struct {
		name, path string
		body       []byte
		code       int
		errText    string
	}{
		{"registered", "/v1/datasets/iris/baseline", raw, http.StatusCreated, ""},
		{"reformatted", "/v1/datasets/iris2/baseline", bytes.Replace(raw, []byte(`"max"`), []byte(`"max" `), 1), http.StatusCreated, ""}, // whitespace is not damage
		{"checksum mismatch", "/v1/datasets/bad/baseline", bytes.Replace(raw, []byte(`"rows": 150`), []byte(`"rows": 15`), 1), http.StatusBadRequest, "corrupted baseline: checksum mismatch"},
		{"truncated", "/v1/datasets/bad/baseline", raw[:len(raw)/3], http.StatusBadRequest, "corrupted baseline: not valid JSON"},
		{"other version", "/v1/datasets/bad/baseline", bytes.Replace(raw, []byte(`"version": 1`), []byte(`"version": 7`), 1), http.StatusBadRequest, "unsupported baseline version 7"},
		{"bad name", "/v1/datasets/..x/baseline", raw, http.StatusBadRequest, "invalid dataset name"},
		{"config managed", "/v1/datasets/pinned/baseline", raw, http.StatusConflict, "managed by the configuration"},
		{"too large", "/v1/datasets/big/baseline", append(bytes.Clone(raw), bytes.Repeat([]byte(" "), 100)...), http.StatusRequestEntityTooLarge, "max_baseline_bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := do(http.MethodPost, c.path, c.body)
			if code != c.code {
				t.Fatalf("status %d, want %d: %v", code, c.code, out)
			}
			if c.errText != "" && !strings.Contains(out["error"].(string), c.errText) {
				t.Errorf("error %q, want it to mention %q", out["error"], c.errText)
			}
			if c.errText == "" && (out["name"] == nil || out["baseline"] == nil) {
				t.Errorf("created response %v", out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "datasets", "bad")); err == nil {
		t.Error("refused baselines left a directory")
	}

	header, rows := irisRows(t)
	m.HandleEvent(t.Context(), batchEvent(t, "ev1", "iris", map[string]any{"records": records(header, rows)}))
	code, out := do(http.MethodGet, "/v1/datasets", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/datasets: %d", code)
	}
	var list struct {
		Datasets []monitor.DatasetStatus `json:"datasets"`
	}
	b, _ := json.Marshal(out)
	json.Unmarshal(b, &list)
	names := []string{}
	for _, d := range list.Datasets {
		names = append(names, d.Name)
		if d.Name == "iris" && (d.Checks != 1 || d.Verdicts["clean"] != 1 || d.LastCheck == nil || d.LastCheck.EventID != "ev1" || d.Baseline.Rows != 150) {
			t.Errorf("iris status %+v", d)
		}
	}
	if strings.Join(names, ",") != "iris,iris2,pinned" {
		t.Errorf("datasets %v", names)
	}
	if out["streams"] == nil {
		t.Error("no streams status")
	}
	// Only the two routes are served.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/v1/datasets", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /v1/datasets: %d", rec.Code)
	}
}

func TestRoutesMatchHandler(t *testing.T) {
	m, _ := newMonitor(t, monitor.Config{})
	mux := http.NewServeMux()
	for _, r := range monitor.Routes() {
		mux.Handle(r, m.Handler()) // how the API mounts it
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/datasets", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("mounted GET: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/datasets/iris/baseline", bytes.NewReader(irisBaseline(t))))
	if rec.Code != http.StatusCreated {
		t.Errorf("mounted POST: %d %s", rec.Code, rec.Body)
	}
}
