package alert_test

import (
	"bytes"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/alert"
)

const exampleConfig = `
external_url: https://pipewarden.example
route:
  receiver: team
  group_by: [rule, subject]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 10s
      continue: true
      responses: [pause]
receivers:
  - name: team
    webhook: {url: "https://hooks.example/pw", secret: s3cret}
  - name: pager
    slack: {url: "https://hooks.slack.example/T/B/X"}
  - name: am
    alertmanager: {url: "http://127.0.0.1:9093", resend: 1h}
  - name: siem
    file: {path: /var/log/pipewarden/alerts.jsonl}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="high"']
    equal: [subject]
criticality:
  - {kind: model, name: "fraud-*", level: critical}
responses:
  - {name: pause, type: pause_deployments, ttl: 2h}
  - {name: block, type: block_client, matchers: ['rule="inference_extraction"'], dry_run: true}
auto_resolve: {after: 12h, rules: {inference_extraction: 1h}}
silences: {max_duration: 168h}
runbooks: {model_unsigned_change: "Check who changed the model."}
`

func decode(t *testing.T, s string) (alert.Config, error) {
	t.Helper()
	c := alert.DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(s)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestConfigExample(t *testing.T) {
	c, err := decode(t, exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Route.Routes[0].GroupWait.Seconds() != 10 || c.Receivers[2].Alertmanager.Resend.Hours() != 1 || c.Responses[0].TTL.Hours() != 2 {
		t.Errorf("durations: %+v", c)
	}
	if len(c.InhibitRules) != 1 {
		t.Errorf("a configured inhibit_rules list replaces the default one: %+v", c.InhibitRules)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "route: {recever: x}", "recever"},
		{"undefined receiver", "route: {receiver: nope}", `receiver "nope" is not defined`},
		{"two kinds", "receivers: [{name: a, webhook: {url: x}, file: {path: y}}]\nroute: {receiver: a}", "exactly one"},
		{"no url", "receivers: [{name: a, webhook: {}}]\nroute: {receiver: a}", "needs a url"},
		{"bad matcher", "receivers: [{name: a, file: {path: x}}]\nroute: {receiver: a, routes: [{matchers: ['sev']}]}", "operator"},
		{"root matchers", "receivers: [{name: a, file: {path: x}}]\nroute: {receiver: a, matchers: ['a=\"b\"']}", "root route"},
		{"undefined response", "receivers: [{name: a, file: {path: x}}]\nroute: {receiver: a, responses: [x]}", `response "x"`},
		{"bad response type", "responses: [{name: x, type: reboot}]", "unknown type"},
		{"bad level", "criticality: [{name: x, level: extreme}]", "level"},
		{"duplicate receiver", "receivers: [{name: a, file: {path: x}}, {name: a, file: {path: y}}]\nroute: {receiver: a}", "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
