package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the real pipewarden binary once per test run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pipewarden-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pipewarden")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type daemon struct {
	cmd    *exec.Cmd
	base   string
	token  string
	stderr *bytes.Buffer
}

func startDaemon(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for d.base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited before listening: %s", d.stderr)
			}
			if _, addr, found := strings.Cut(l, "listening on "); found {
				d.base = strings.Fields(addr)[0]
			}
		case <-timeout:
			t.Fatalf("daemon did not report its address: %s", d.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	d.token = strings.TrimSpace(string(tok))
	return d
}

func (d *daemon) post(body string) (int, error) {
	req, _ := http.NewRequest("POST", d.base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (d *daemon) allIDs(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	cursor := ""
	for {
		req, _ := http.NewRequest("GET", d.base+"/v1/events?limit=1000&cursor="+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			Next string `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			ids[it.ID] = true
		}
		if page.Next == "" {
			return ids
		}
		cursor = page.Next
	}
}

func batchBody(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"%s-%d","source":"//test","type":"pipewarden.inference.request","data":{"endpoint":"fraud-api","client":"c%d","status":200,"latency_ms":2.5,"features":[1,2,3]}}`, prefix, i, i%7)
	}
	b.WriteString("]")
	return b.String()
}

// TestKill9LosesNothingAcknowledged posts concurrently, kills the daemon with SIGKILL mid-stream,
// restarts it on the same data directory and checks that every acknowledged event is there.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				prefix := fmt.Sprintf("w%d-b%d", w, i)
				code, err := d.post(batchBody(prefix, 50))
				if err != nil {
					return // the daemon is gone
				}
				if code == http.StatusAccepted {
					mu.Lock()
					for j := 0; j < 50; j++ {
						acked = append(acked, fmt.Sprintf("%s-%d", prefix, j))
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(700 * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatalf("nothing was acknowledged before the kill: %s", d.stderr)
	}
	d2 := startDaemon(t, dir)
	stored := d2.allIDs(t)
	missing := 0
	for _, id := range acked {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost after kill -9", missing, len(acked))
	}
	t.Logf("%d acknowledged events all present after kill -9 (%d stored)", len(acked), len(stored))
}

// TestSIGTERMDrainsAndExits checks a clean, bounded shutdown.
func TestSIGTERMDrainsAndExits(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	if code, err := d.post(batchBody("term", 10)); err != nil || code != 202 {
		t.Fatalf("post = %d %v", code, err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not exit within 20s of SIGTERM")
	}
	if !strings.Contains(d.stderr.String(), "pipewarden stopped") {
		t.Errorf("no clean-stop log line: %s", d.stderr)
	}
	d2 := startDaemon(t, dir)
	if n := len(d2.allIDs(t)); n != 10 {
		t.Errorf("after restart: %d events, want 10", n)
	}
}

// TestSIGHUPReloadsRules: a rule file fixed on disk is picked up on SIGHUP, and a broken one leaves
// the running rules in place.
func TestSIGHUPReloadsRules(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "user.yaml")
	os.WriteFile(rulesFile, []byte("- rule: first\n  condition: data.rows > 1\n  match: pipewarden.data.batch\n  output: x\n  severity: low\n"), 0o600)
	cfg := filepath.Join(dir, "pw.yaml")
	os.WriteFile(cfg, []byte("rules:\n  files: [user.yaml]\n  watch_interval: 0s\n"), 0o600)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", cfg)
	ruleIDs := func() map[string]bool {
		req, _ := http.NewRequest("GET", d.base+"/v1/rules", nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Rules []struct{ ID string } `json:"rules"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		ids := map[string]bool{}
		for _, r := range body.Rules {
			ids[r.ID] = true
		}
		return ids
	}
	if !ruleIDs()["first"] {
		t.Fatal("user rule not loaded at start")
	}
	os.WriteFile(rulesFile, []byte("- rule: second\n  condition: data.rows > 1\n  match: pipewarden.data.batch\n  output: x\n  severity: low\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !ruleIDs()["second"] {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload the rules: %s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.WriteFile(rulesFile, []byte("- rule: third\n  condition: data.rows >>> 1\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(d.stderr.String(), "previous rules keep running") {
		if time.Now().After(deadline) {
			t.Fatalf("a broken file on SIGHUP must be reported: %s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ids := ruleIDs(); !ids["second"] || ids["third"] {
		t.Errorf("after a failed reload the previous rules must run: %v", ids)
	}
}
