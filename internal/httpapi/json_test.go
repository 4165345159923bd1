package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
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
