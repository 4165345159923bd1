package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/event"
)

// writeAccepted must answer exactly what encoding/json gives for the same ids.
func TestWriteAcceptedMatchesEncodingJSON(t *testing.T) {
	cases := [][]string{
		nil,
		{"a"},
		{"evt-0001", "6f1c2e9a-7d7b-4c1e-9a51-1f0e6c7e3b2d"},
		{`quo"te`, `back\slash`, "tab\there", "<html>&", "caf\u00e9", "\u2028line", "bad\xffutf8", "del\x7f"},
	}
	for i, ids := range cases {
		evs := make([]event.Event, len(ids))
		for j, id := range ids {
			evs[j].ID = id
		}
		got := httptest.NewRecorder()
		writeAccepted(got, evs)
		want := httptest.NewRecorder()
		wantIDs := ids
		if wantIDs == nil {
			wantIDs = []string{}
		}
		writeJSON(want, http.StatusAccepted, map[string]any{"accepted": len(ids), "ids": wantIDs})
		if got.Code != http.StatusAccepted || got.Body.String() != want.Body.String() {
			t.Errorf("case %d: got %d %q, want %q", i, got.Code, got.Body.String(), want.Body.String())
		}
		if cl := got.Header().Get("Content-Length"); cl != strconv.Itoa(got.Body.Len()) {
			t.Errorf("case %d: Content-Length %q for %d bytes", i, cl, got.Body.Len())
		}
		if ct := got.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("case %d: Content-Type %q", i, ct)
		}
	}
}

func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name    string
		body    string
		cl      int64
		limit   int64
		want    string
		wantErr bool
	}{
		{"announced length", body, 1000, 4096, body, false},
		{"unknown length", body, -1, 4096, body, false},
		{"truncated by the client", body[:600], 1000, 4096, "", true},
		{"over the limit, unknown length", body, -1, 999, "", true},
		{"at the limit", body, 1000, 1000, body, false},
		{"empty", "", 0, 10, "", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(tc.body))
		r.ContentLength = tc.cl
		got, err := readBody(httptest.NewRecorder(), r, tc.limit)
		if (err != nil) != tc.wantErr || (err == nil && string(got) != tc.want) {
			t.Errorf("%s: got %d bytes, err %v", tc.name, len(got), err)
		}
	}
}
