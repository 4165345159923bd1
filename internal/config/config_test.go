package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/config"
)

func TestDefaultYAMLMatchesDefault(t *testing.T) {
	c, err := config.Load(config.DefaultYAML())
	if err != nil {
		t.Fatalf("the commented default config must load: %v", err)
	}
	if !reflect.DeepEqual(c, config.Default()) {
		t.Errorf("default.yaml and Default() disagree:\n yaml: %+v\n code: %+v", c, config.Default())
	}
	if err := config.Default().Validate(); err != nil {
		t.Errorf("Default() invalid: %v", err)
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	c, err := config.Load(nil)
	if err != nil || !reflect.DeepEqual(c, config.Default()) {
		t.Fatalf("empty config: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key with line", "listen: 127.0.0.1:1\nlisten_addr: x\n", "line 2: field listen_addr not found"},
		{"nested unknown key", "store:\n  driver: sqlite\n  sqlite:\n    jornal: wal\n", "line 4: field jornal not found"},
		{"wrong type", "limits:\n  max_depth: deep\n", "line 2"},
		{"bad listen", "listen: localhost\n", `listen: "localhost" is not host:port`},
		{"bad driver", "store:\n  driver: mysql\n", `store.driver: "mysql" is not sqlite or postgres`},
		{"postgres without dsn", "store:\n  driver: postgres\n", "store.postgres.dsn: required"},
		{"bad role", "auth:\n  tokens:\n    - name: x\n      role: root\n      sha256: " + strings.Repeat("a", 64) + "\n", `role "root" is not`},
		{"plain token instead of hash", "auth:\n  tokens:\n    - name: x\n      role: admin\n      sha256: hunter2\n", "sha256 must be 64 lower-case hex digits"},
		{"bad duration", "store:\n  retention:\n    events: forever\n", "line 3"},
		{"unset env", "listen: ${PIPEWARDEN_TEST_UNSET_VAR}\n", "line 1: environment variable PIPEWARDEN_TEST_UNSET_VAR is not set"},
		{"event larger than body", "limits:\n  max_body_bytes: 100\n  max_event_bytes: 200\n", "larger than limits.max_body_bytes"},
		{"bad synchronous", "store:\n  sqlite:\n    synchronous: off\n", "store.sqlite.synchronous"},
		{"bad metrics access", "metrics:\n  access: everyone\n", "metrics.access"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestEnvExpansionAndPaths(t *testing.T) {
	t.Setenv("PW_TEST_PORT", "7788")
	dir := t.TempDir()
	p := filepath.Join(dir, "pw.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:${PW_TEST_PORT}\ndata_dir: state\nstore:\n  retention:\n    events: 24h\n  batch:\n    max_wait: 2ms\nauth:\n  tokens:\n    - name: cost$$center\n      role: viewer\n      sha256: "+strings.Repeat("b", 64)+"\n"), 0o600)
	c, err := config.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7788" {
		t.Errorf("listen = %q", c.Listen)
	}
	if c.DataDir != filepath.Join(dir, "state") || c.SQLitePath() != filepath.Join(dir, "state", "pipewarden.db") {
		t.Errorf("relative paths must resolve against the file: %q %q", c.DataDir, c.SQLitePath())
	}
	if c.Store.Retention.Events != 24*time.Hour || c.Store.Batch.MaxWait != 2*time.Millisecond {
		t.Errorf("durations: %v %v", c.Store.Retention.Events, c.Store.Batch.MaxWait)
	}
	if c.Auth.Tokens[0].Name != "cost$center" {
		t.Errorf("$$ must be a literal $: %q", c.Auth.Tokens[0].Name)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := config.LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing file error must name it: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(config.DefaultYAML())
	f.Add([]byte("listen: ${X}\n"))
	f.Add([]byte("store: {driver: postgres, postgres: {dsn: x}}"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Load(b)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Load accepted a config that does not validate: %v", verr)
			}
		}
	})
}
