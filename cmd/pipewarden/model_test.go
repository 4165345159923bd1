package main

import (
	"bufio"
	"bytes"
	"crypto/elliptic"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModelApproveRollbackStatus(t *testing.T) {
	data := t.TempDir()
	dir := testModel(t)
	weights := filepath.Join(dir, "weights", "model.safetensors")
	approved, _ := os.ReadFile(weights)

	code, out, errOut := runCLI(t, "model", "approve", dir, "--name", "fraud", "--data", data, "--approver", "alice")
	if code != 0 || !strings.Contains(out, "approved fraud version 1 (sha256:") || !strings.Contains(out, "by alice") {
		t.Fatalf("approve: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "model", "status", "--data", data)
	if code != 0 || !strings.Contains(out, "fraud") || !strings.Contains(out, "not watched") || !strings.Contains(out, "has not run") {
		t.Fatalf("status: %d %q", code, out)
	}

	writeFile(t, weights, []byte("poisoned"))
	code, out, errOut = runCLI(t, "model", "rollback", "fraud", "--data", data)
	if code != 0 || !strings.Contains(out, "rolled back to approved version 1") || !strings.Contains(out, "weights/model.safetensors") {
		t.Fatalf("rollback: %d %q %q", code, out, errOut)
	}
	if got, _ := os.ReadFile(weights); !bytes.Equal(got, approved) {
		t.Fatal("approved bytes not restored")
	}
	qs, _ := filepath.Glob(filepath.Join(data, "models", "quarantine", "*-fraud", "tree", "weights", "model.safetensors"))
	if len(qs) != 1 {
		t.Fatalf("quarantined copies: %v", qs)
	}
	if b, _ := os.ReadFile(qs[0]); string(b) != "poisoned" {
		t.Errorf("quarantined bytes %q", b)
	}

	code, out, _ = runCLI(t, "model", "rollback", "fraud", "--data", data, "--format", "json")
	var r struct {
		Summary struct {
			Extra struct {
				Rollback struct {
					AlreadyApproved bool `json:"already_approved"`
					Verified        bool `json:"verified"`
				} `json:"rollback"`
			} `json:"extra"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || !r.Summary.Extra.Rollback.AlreadyApproved || !r.Summary.Extra.Rollback.Verified {
		t.Fatalf("second rollback: %d %v %s", code, err, out)
	}

	writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"layers": 3}`))
	code, _, _ = runCLI(t, "model", "approve", dir, "--name", "fraud", "--data", data)
	code2, out, _ := runCLI(t, "model", "status", "--data", data, "--format", "json")
	var st struct {
		Models []struct {
			Name     string
			Versions int
			Latest   struct{ Version int }
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || code2 != 0 || err != nil || len(st.Models) != 1 || st.Models[0].Versions != 2 || st.Models[0].Latest.Version != 2 {
		t.Fatalf("second approval and status: %d %d %v %s", code, code2, err, out)
	}
}

func TestModelApproveSigned(t *testing.T) {
	dir := testModel(t)
	priv, pub := testKeys(t, elliptic.P256(), false)
	_, otherPub := testKeys(t, elliptic.P256(), false)
	sig := filepath.Join(dir, "model.sig")
	if code, _, errOut := runCLI(t, "sign", dir, "--key", priv, "--signature", sig); code != 0 {
		t.Fatalf("sign: %s", errOut)
	}
	tests := []struct {
		name string
		key  string
		code int
		rule string
	}{
		{"trusted key", pub, 0, ""},
		{"another key", otherPub, 1, "signing.signature-invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			code, out, errOut := runCLI(t, "model", "approve", dir, "--name", "fraud", "--data", data,
				"--signature", sig, "--key", tc.key, "--format", "json")
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tc.code, out, errOut)
			}
			rules := findingRules(t, out)
			if tc.rule != "" && len(rules[tc.rule]) == 0 {
				t.Errorf("no %s finding: %s", tc.rule, out)
			}
			if tc.rule == "" && (len(rules) != 0 || !strings.Contains(out, `"signed": true`)) {
				t.Errorf("output %s", out)
			}
			// A refused approval records nothing.
			_, status, _ := runCLI(t, "model", "status", "--data", data)
			if (tc.code == 0) != strings.Contains(status, "fraud") {
				t.Errorf("status after exit %d: %s", code, status)
			}
		})
	}
}

func TestModelUsageErrors(t *testing.T) {
	data := t.TempDir()
	dir := testModel(t)
	_, pub := testKeys(t, elliptic.P256(), false)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"model", "approve", dir, "--data", data}, "name"},
		{"bad name", []string{"model", "approve", dir, "--name", "../x", "--data", data}, "model name"},
		{"missing dir", []string{"model", "approve", dir + "-nope", "--name", "m", "--data", data}, dir + "-nope"},
		{"a file", []string{"model", "approve", filepath.Join(dir, "config.json"), "--name", "m", "--data", data}, "not a directory"},
		{"key without signature", []string{"model", "approve", dir, "--name", "m", "--key", pub, "--data", data}, "--signature"},
		{"signature without trust", []string{"model", "approve", dir, "--name", "m", "--signature", pub, "--data", data}, "--key"},
		{"unreadable signature", []string{"model", "approve", dir, "--name", "m", "--signature", dir + "/nope.sig", "--key", pub, "--data", data}, "nope.sig"},
		{"bad cap", []string{"model", "approve", dir, "--name", "m", "--cas-max-bytes", "-1", "--data", data}, "cap"},
		{"over the cap", []string{"model", "approve", dir, "--name", "m", "--cas-max-bytes", "10", "--data", data}, "over its cap"},
		{"rollback unknown model", []string{"model", "rollback", "nope", "--data", data}, "no approved version"},
		{"status format", []string{"model", "status", "--format", "sarif", "--data", data}, "--format"},
		{"watch without NAME=DIR", []string{"model", "watch", dir, "--data", data}, "NAME=DIR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line mentioning %q", code, errOut, tc.want)
			}
		})
	}
}

// TestModelEndToEnd runs the real binary: approve, watch, tamper, see the finding, roll back.
func TestModelEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	dir := testModel(t)
	weights := filepath.Join(dir, "weights", "model.safetensors")
	approved, _ := os.ReadFile(weights)
	pw := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("pipewarden %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	pw("model", "approve", dir, "--name", "fraud")

	watch := exec.Command(bin, "model", "watch", "fraud="+dir, "--data", data, "--format", "json")
	stdout, _ := watch.StdoutPipe()
	stderr, _ := watch.StderrPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	if l, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(l, "watching 1 model") {
		t.Fatalf("watch: %q %v", l, err)
	}
	// The watcher is ready once it has written its first status.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out := pw("model", "status"); strings.Contains(out, "approved") && !strings.Contains(out, "has not run") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watcher never checked the model")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Replace the weights the way a deployment tool would: write aside, rename over.
	tmp := weights + ".tmp"
	writeFile(t, tmp, []byte("backdoored weights"))
	start := time.Now()
	if err := os.Rename(tmp, weights); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		t.Logf("replace to finding: %v", time.Since(start))
		var f struct{ Rule, Severity, Title string }
		if err := json.Unmarshal([]byte(l), &f); err != nil || f.Rule != "modelwatch.unapproved-change" || f.Severity != "critical" || !strings.Contains(f.Title, "weights/model.safetensors") {
			t.Fatalf("finding %q %v", l, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no finding from the watcher")
	}

	out := pw("model", "rollback", "fraud")
	if !strings.Contains(out, "rolled back") {
		t.Fatalf("rollback: %s", out)
	}
	if got, _ := os.ReadFile(weights); !bytes.Equal(got, approved) {
		t.Fatal("approved bytes not restored")
	}
	if out := pw("model", "rollback", "fraud"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("second rollback: %s", out)
	}
}
