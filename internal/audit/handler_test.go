package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/audit"
)

func TestHandlerBadInput(t *testing.T) {
	l := openLog(t, t.TempDir(), audit.Options{CheckpointEvery: 10})
	defer l.Close()
	srv := httptest.NewServer(audit.Handler(l))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/v1/audit/checkpoint"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("empty log checkpoint = %d %s", code, body)
	}
	appendN(t, l, 0, 25, 5)
	if c, err := l.Checkpoint(); err != nil || c.Size != 25 {
		t.Fatalf("Checkpoint = %+v, %v", c, err)
	}
	tests := []struct {
		name, path string
		code       int
		want       string
	}{
		{"checkpoint", "/v1/audit/checkpoint", 200, `"size":25`},
		{"entries page", "/v1/audit/entries?from=3&to=5", 200, `"index":4,"record":{"action":"test"`},
		{"entries default to", "/v1/audit/entries?from=20", 200, `"to":25`},
		{"entries missing from", "/v1/audit/entries", 400, `"from\" is required`},
		{"entries from past end", "/v1/audit/entries?from=26", 400, "log size"},
		{"entries negative", "/v1/audit/entries?from=-1", 400, "non-negative"},
		{"entries to before from", "/v1/audit/entries?from=5&to=2", 400, "from <= to"},
		{"inclusion", "/v1/audit/proof/inclusion?index=3&size=25", 200, `"proof":[`},
		{"inclusion default size", "/v1/audit/proof/inclusion?index=3", 200, `"size":25`},
		{"inclusion index past size", "/v1/audit/proof/inclusion?index=9&size=9", 400, "out of range"},
		{"inclusion size past log", "/v1/audit/proof/inclusion?index=1&size=99", 400, "out of range"},
		{"inclusion not a number", "/v1/audit/proof/inclusion?index=x", 400, "non-negative integer"},
		{"consistency", "/v1/audit/proof/consistency?from=7&to=25", 200, `"from_root"`},
		{"consistency from zero", "/v1/audit/proof/consistency?from=0&to=25", 400, "1 <= from"},
		{"consistency backwards", "/v1/audit/proof/consistency?from=20&to=10", 400, "from <= to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tc.path)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("GET %s = %d %s; want %d containing %q", tc.path, code, body, tc.code, tc.want)
			}
			if code != 200 {
				var e map[string]string
				if json.Unmarshal([]byte(body), &e) != nil || e["error"] == "" {
					t.Errorf("error body %q is not {\"error\": ...}", body)
				}
			}
		})
	}
	resp, _ := http.Post(srv.URL+"/v1/audit/checkpoint", "text/plain", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST checkpoint = %d, want 405", resp.StatusCode)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestVerifyRemote(t *testing.T) {
	dir, witness := t.TempDir(), t.TempDir()+"/w"
	l := openLog(t, dir, audit.Options{CheckpointEvery: 100, WitnessFile: witness})
	defer l.Close()
	appendN(t, l, 0, 2500, 100)
	tamper := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tamper || r.URL.Path != "/v1/audit/entries" {
			audit.Handler(l).ServeHTTP(w, r)
			return
		}
		// A server that edits record 1234 on the way out.
		rec := httptest.NewRecorder()
		audit.Handler(l).ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if i := bytes.Index(body, []byte(`"n":1234`)); i >= 0 {
			body = append(body[:i:i], append([]byte(`"n":1235`), body[i+8:]...)...)
		}
		w.Write(body)
	}))
	defer srv.Close()
	ws := readWitness(t, witness)
	res, err := audit.VerifyRemote(context.Background(), audit.Remote{BaseURL: srv.URL}, audit.VerifyOptions{Witness: ws})
	if err != nil || !res.OK() || res.Records != 2500 || res.Witnessed == 0 {
		t.Fatalf("honest server: %v records=%d witnessed=%d\n%s", err, res.Records, res.Witnessed, problems(res))
	}
	tamper = true
	res, err = audit.VerifyRemote(context.Background(), audit.Remote{BaseURL: srv.URL}, audit.VerifyOptions{Witness: ws})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.FirstIndex() < 1200 || res.FirstIndex() > 1234 {
		t.Errorf("edited record not located: first %d\n%s", res.FirstIndex(), problems(res))
	}
}
