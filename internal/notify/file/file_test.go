package file_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/notify/file"
)

func TestJSONLinesOncePerKeyAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "siem", "alerts.jsonl")
	m := &notify.Message{Version: "4", Status: "firing", Alerts: []notify.Alert{{Status: "firing", Labels: map[string]string{"rule": "r"}}}}
	ctx := context.Background()
	n := file.New(file.Config{Path: path})
	for _, k := range []string{"k1", "k2", "k1"} {
		if err := n.Notify(ctx, k, m); err != nil {
			t.Fatal(err)
		}
	}
	// A new process (restart) re-sends k2: it must not be appended again.
	n = file.New(file.Config{Path: path})
	if err := n.Notify(ctx, "k2", m); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, "k3", m); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l file.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %s", sc.Text())
		}
		if l.Version != "4" || l.Alerts[0].Labels["rule"] != "r" {
			t.Errorf("line = %+v", l)
		}
		keys = append(keys, l.Key)
	}
	if len(keys) != 3 || keys[0] != "k1" || keys[1] != "k2" || keys[2] != "k3" {
		t.Errorf("keys written = %v", keys)
	}
}
