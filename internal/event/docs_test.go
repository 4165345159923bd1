package event_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/event"
)

// TestVocabularyDocumented keeps docs/events.md in step with the vocabulary.
func TestVocabularyDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `pipewarden.") {
			typ := strings.Trim(strings.SplitN(line, "|", 3)[1], " `")
			rows[typ] = line
		}
	}
	for _, typ := range event.Types() {
		row, ok := rows[typ]
		if !ok {
			t.Errorf("docs/events.md has no row for %s", typ)
			continue
		}
		spec, _ := event.Lookup(typ)
		cols := strings.Split(row, "|")
		for _, f := range spec.Fields {
			col := cols[3]
			if f.Required {
				col = cols[2]
			}
			if !strings.Contains(col, "`"+f.Name+"`") {
				t.Errorf("docs/events.md: %s field %s (required=%v) not in the right column", typ, f.Name, f.Required)
			}
		}
	}
	if len(rows) != len(event.Types()) {
		t.Errorf("docs/events.md documents %d types, the vocabulary has %d", len(rows), len(event.Types()))
	}
}
