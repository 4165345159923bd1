package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
)

// demoStep is one moment of the simulated pipeline.
type demoStep struct {
	say    string
	events []map[string]any
}

func newDemoCmd(g *globals) *cobra.Command {
	var keep bool
	var dataDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a simulated ML pipeline under attack against an embedded daemon",
		Long: `Start an embedded daemon (temporary data directory, loopback port), feed it a day in the
life of an ML pipeline: normal ingestion, training, registration, deployment and traffic, then
a poisoning attempt, a privilege escalation, a brute-forced login, an unsigned model swap, a
typosquatted dependency, data exfiltration from a training job and an extraction-like burst of
queries. It prints the alerts pipewarden raised, by priority. With --keep the daemon keeps
running so you can explore the API (the token path is printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dataDir == "" {
				d, err := os.MkdirTemp("", "pipewarden-demo-")
				if err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(d)
				}
				dataDir = d
			}
			cfg := config.Default()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", dataDir
			cfg.Alerting.Route.GroupWait = 0
			a, err := app.New(ctx, app.Options{Config: cfg, Version: g.version})
			if err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				return err
			}
			defer a.Stop(context.WithoutCancel(ctx))
			tok, err := os.ReadFile(app.TokenFile(dataDir))
			if err != nil {
				return err
			}
			c := &demoClient{base: "http://" + a.Addr(), token: strings.TrimSpace(string(tok))}
			fmt.Fprintf(g.stdout, "pipewarden demo: embedded daemon on %s (data in %s)\n\n", c.base, dataDir)
			for i, st := range demoScenario(time.Now().UTC()) {
				fmt.Fprintf(g.stdout, "%2d. %s\n", i+1, st.say)
				if err := c.post(st.events); err != nil {
					return err
				}
				time.Sleep(150 * time.Millisecond)
			}
			time.Sleep(1500 * time.Millisecond) // let rules, correlation and alerting settle
			alerts, err := c.alerts()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\n%d alerts, highest priority first:\n\n", len(alerts))
			fmt.Fprintf(g.stdout, "  %-9s %-8s %-38s %-24s %s\n", "SEVERITY", "PRIORITY", "RULE", "SUBJECT", "TITLE")
			for _, al := range alerts {
				title := al.Title
				if len(title) > 70 {
					title = title[:69] + "…"
				}
				fmt.Fprintf(g.stdout, "  %-9s %-8.2f %-38s %-24s %s\n", strings.ToUpper(al.Severity), al.Priority, al.Rule, al.Subject.Name, title)
			}
			fmt.Fprintf(g.stdout, "\nEvery event, finding and alert is in the tamper-evident audit log: pipewarden audit verify --data %s\n", dataDir)
			if keep {
				fmt.Fprintf(g.stdout, "The daemon keeps running on %s; token in %s. Ctrl-C to stop.\n", c.base, app.TokenFile(dataDir))
				<-ctx.Done()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the daemon running after the scenario")
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory (default: a temporary one, removed unless --keep)")
	return cmd
}

type demoClient struct {
	base, token string
	seq         int
}

func (c *demoClient) post(evs []map[string]any) error {
	for _, e := range evs {
		c.seq++
		e["specversion"] = "1.0"
		e["id"] = fmt.Sprintf("demo-%d-%d", time.Now().UnixNano(), c.seq)
		if _, ok := e["source"]; !ok {
			e["source"] = "//demo"
		}
	}
	b, _ := json.Marshal(evs)
	req, _ := http.NewRequest("POST", c.base+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("demo: the daemon refused events: %s %s", resp.Status, body)
	}
	return nil
}

type demoAlert struct {
	Rule     string  `json:"rule"`
	Severity string  `json:"severity"`
	Title    string  `json:"title"`
	Priority float64 `json:"priority"`
	Subject  struct {
		Name string `json:"name"`
	} `json:"subject"`
}

func (c *demoClient) alerts() ([]demoAlert, error) {
	req, _ := http.NewRequest("GET", c.base+"/v1/alerts?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page struct {
		Items []demoAlert `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, err
	}
	sort.SliceStable(page.Items, func(i, j int) bool { return page.Items[i].Priority > page.Items[j].Priority })
	return page.Items, nil
}

func ev(typ, subject string, at time.Time, data map[string]any) map[string]any {
	return map[string]any{"type": typ, "subject": subject, "time": at.Format(time.RFC3339Nano), "data": data}
}

// demoScenario is the simulated day; times are spread over the last hour so correlations apply.
func demoScenario(now time.Time) []demoStep {
	t := func(min int) time.Time { return now.Add(time.Duration(min-60) * time.Minute) }
	schema := []map[string]any{{"name": "customer_id", "type": "int64"}, {"name": "amount", "type": "float64"}, {"name": "label", "type": "int64"}}
	var steps []demoStep
	var normal []map[string]any
	for i := 0; i < 5; i++ {
		normal = append(normal, ev("pipewarden.data.batch", "transactions", t(i), map[string]any{
			"dataset": "transactions", "source": "s3://lake/transactions/daily", "rows": 100000 + i*500, "schema": schema, "digest": fmt.Sprintf("sha256:tx-%d", i)}))
	}
	steps = append(steps, demoStep{"Normal ingestion: five daily batches of 'transactions' from s3://lake/transactions/daily", normal})
	steps = append(steps, demoStep{"Training by training-bot, model registered signed, deployed with approval", []map[string]any{
		ev("pipewarden.training.run", "fraud-detector", t(6), map[string]any{"run_id": "run-41", "phase": "started", "actor": "training-bot", "config": map[string]any{"lr": 0.001}, "datasets": []string{"sha256:tx-4"}}),
		ev("pipewarden.training.run", "fraud-detector", t(8), map[string]any{"run_id": "run-41", "phase": "completed", "actor": "training-bot", "model_digest": "sha256:model-v7"}),
		ev("pipewarden.model.artifact", "fraud-detector", t(9), map[string]any{"model": "fraud-detector", "version": "7", "digest": "sha256:model-v7", "action": "registered", "actor": "ci-pipeline", "signed": true}),
		ev("pipewarden.deploy.change", "fraud-api", t(10), map[string]any{"endpoint": "fraud-api", "model_digest": "sha256:model-v7", "actor": "deploy-bot", "approved": true}),
	}})
	var traffic []map[string]any
	for i := 0; i < 40; i++ {
		traffic = append(traffic, ev("pipewarden.inference.request", "fraud-api", t(11), map[string]any{
			"endpoint": "fraud-api", "client": fmt.Sprintf("app-%d", i%4), "status": 200, "latency_ms": 3.5}))
	}
	steps = append(steps, demoStep{"Inference traffic from four applications", traffic})
	steps = append(steps, demoStep{"ATTACK data poisoning: a 'transactions' batch from an unknown bucket with an extra column", []map[string]any{
		ev("pipewarden.data.batch", "transactions", t(20), map[string]any{"dataset": "transactions", "source": "s3://tmp-upload-7f3/transactions",
			"rows": 100400, "schema": append(append([]map[string]any{}, schema...), map[string]any{"name": "trigger", "type": "string"}), "digest": "sha256:tx-evil"}),
	}})
	var brute []map[string]any
	for i := 0; i < 6; i++ {
		brute = append(brute, ev("pipewarden.access.auth", "mallory", t(25).Add(time.Duration(i)*20*time.Second), map[string]any{"principal": "mallory", "result": "failure", "source_ip": "203.0.113.66"}))
	}
	brute = append(brute, ev("pipewarden.access.auth", "mallory", t(27), map[string]any{"principal": "mallory", "result": "success", "source_ip": "203.0.113.66"}))
	steps = append(steps, demoStep{"ATTACK credential stuffing: six failed logins for 'mallory', then a success", brute})
	steps = append(steps, demoStep{"ATTACK privilege escalation: mallory grants herself admin on the model registry", []map[string]any{
		ev("pipewarden.access.change", "mallory", t(28), map[string]any{"actor": "mallory", "principal": "mallory", "resource": "model-registry", "role_before": "viewer", "role_after": "admin"}),
	}})
	steps = append(steps, demoStep{"ATTACK model tampering: an unsigned model is promoted and deployed with an unregistered digest", []map[string]any{
		ev("pipewarden.model.artifact", "fraud-detector", t(30), map[string]any{"model": "fraud-detector", "version": "7", "digest": "sha256:model-evil", "action": "changed", "actor": "mallory", "signed": false}),
		ev("pipewarden.deploy.change", "fraud-api", t(31), map[string]any{"endpoint": "fraud-api", "model_digest": "sha256:model-evil", "actor": "mallory", "approved": false}),
	}})
	steps = append(steps, demoStep{"ATTACK supply chain: 'tensorfllow' added to the training project's requirements", []map[string]any{
		ev("pipewarden.deps.change", "fraud-training", t(33), map[string]any{"project": "fraud-training", "lockfile": "requirements.txt", "added": []string{"tensorfllow==2.15.0"}, "removed": []string{}, "changed": []string{}}),
	}})
	steps = append(steps, demoStep{"ATTACK exfiltration: a training job sends 700 MB to an unknown host", []map[string]any{
		ev("pipewarden.infra.network", "train-job-42", t(35), map[string]any{"source": "train-job-42", "destination": "drop.evil.example", "port": 443, "bytes": 734003200}),
		ev("pipewarden.training.run", "fraud-detector", t(36), map[string]any{"run_id": "run-42", "phase": "started", "actor": "mallory", "config": map[string]any{"trust_remote_code": true}}),
	}})
	var burst []map[string]any
	for i := 0; i < 400; i++ {
		burst = append(burst, ev("pipewarden.inference.request", "fraud-api", t(40).Add(time.Duration(i)*100*time.Millisecond), map[string]any{
			"endpoint": "fraud-api", "client": "key-scraper", "status": []int{200, 200, 400}[i%3], "latency_ms": 2.0}))
	}
	steps = append(steps, demoStep{"ATTACK model extraction: one API key fires 400 queries in 40 seconds, a third of them malformed", burst})
	return steps
}
