package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/store"
)

// maxTuneAlerts bounds how many false-positive alerts one feedback request reads.
const maxTuneAlerts = 5000

// RuleFeedbackView is one rule's feedback with a precision estimate: the share of its alerts
// not marked false positive.
type RuleFeedbackView struct {
	store.RuleFeedback
	Precision float64 `json:"precision"`
}

// Proposal is a suggested rule exception for a label combination marked false positive at
// least N times. Nothing is applied: a person reviews the YAML and adds it to a rule file.
type Proposal struct {
	Rule           string            `json:"rule"`
	Labels         map[string]string `json:"labels"`
	FalsePositives int               `json:"false_positives"`
	Comments       []string          `json:"comments,omitempty"`
	// Fields and Values are the exception: event fields (CEL) and the values they had.
	Fields []string `json:"fields,omitempty"`
	Values []string `json:"values,omitempty"`
	// Note says why no exception could be written (a label no event field carries).
	Note string `json:"note,omitempty"`
}

// Feedback is the body of GET /v1/alerting/feedback.
type Feedback struct {
	Rules     []RuleFeedbackView `json:"rules"`
	MinCount  int                `json:"min_count"`
	Proposals []Proposal         `json:"proposals"`
	// YAML holds the proposals as rule overrides (override: append of exceptions).
	YAML string `json:"yaml"`
}

// labels that describe, rather than identify, what an exception should match.
var descriptiveLabels = map[string]bool{"rule": true, "severity": true, "stage": true, "subject_kind": true}

// Feedback counts false positives per rule and proposes exceptions for the label combinations
// marked false positive at least min times (default 3).
func (p *Pipeline) Feedback(ctx context.Context, min int) (Feedback, error) {
	if min <= 0 {
		min = 3
	}
	out := Feedback{MinCount: min, Rules: []RuleFeedbackView{}, Proposals: []Proposal{}}
	fb, err := p.st.RuleFeedback(ctx)
	if err != nil {
		return out, err
	}
	for _, f := range fb {
		v := RuleFeedbackView{RuleFeedback: f, Precision: 1}
		if f.Alerts > 0 {
			v.Precision = float64(f.Alerts-f.FalsePositives) / float64(f.Alerts)
		}
		out.Rules = append(out.Rules, v)
	}
	type combo struct {
		prop  Proposal
		alert string // one alert of the combination, for its evidence
	}
	combos := map[string]*combo{}
	var order []string
	q := store.AlertQuery{State: store.AlertFalsePositive, Limit: 1000}
	for n := 0; n < maxTuneAlerts; {
		page, err := p.st.ListAlerts(ctx, q)
		if err != nil {
			return out, err
		}
		for _, a := range page.Items {
			n++
			ident := map[string]string{}
			for k, v := range a.Labels {
				if !descriptiveLabels[k] {
					ident[k] = v
				}
			}
			key := a.Rule + "\x00" + labelKey(ident)
			c := combos[key]
			if c == nil {
				c = &combo{prop: Proposal{Rule: a.Rule, Labels: ident}, alert: a.ID}
				combos[key] = c
				order = append(order, key)
			}
			c.prop.FalsePositives++
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	sort.Strings(order)
	for _, key := range order {
		c := combos[key]
		if c.prop.FalsePositives < min {
			continue
		}
		d, err := p.st.GetAlert(ctx, c.alert)
		if err != nil {
			return out, err
		}
		if d.Comment != "" {
			c.prop.Comments = append(c.prop.Comments, d.Comment)
		}
		p.exceptionFor(&c.prop, &d)
		out.Proposals = append(out.Proposals, c.prop)
	}
	out.YAML, err = proposalsYAML(out.Proposals)
	return out, err
}

// exceptionFor maps each identifying label to the event field that carried its value in the
// alert's findings: the event's subject, or a data field with the same value.
func (p *Pipeline) exceptionFor(prop *Proposal, a *store.AlertDetail) {
	for _, k := range sortedKeys(prop.Labels) {
		v := prop.Labels[k]
		field := ""
		for _, f := range a.Findings {
			if field = fieldWithValue(f.Evidence, v); field != "" {
				break
			}
		}
		if field == "" {
			prop.Fields, prop.Values = nil, nil
			prop.Note = fmt.Sprintf("no event field carries label %s=%q; write this exception by hand", k, v)
			return
		}
		prop.Fields = append(prop.Fields, field)
		prop.Values = append(prop.Values, v)
	}
	if len(prop.Fields) == 0 {
		prop.Note = "the alerts have no identifying label besides the rule; consider disabling or rewriting the rule"
	}
}

// fieldWithValue finds the CEL field of a finding's evidence (as the rules engine records it:
// evidence.event and evidence.data) whose value is v.
func fieldWithValue(ev map[string]any, v string) string {
	if e, ok := ev["event"].(map[string]any); ok {
		if s, _ := e["subject"].(string); s == v && v != "" {
			return "subject"
		}
	}
	data, _ := ev["data"].(map[string]any)
	for _, k := range sortedAnyKeys(data) {
		if s, ok := data[k].(string); ok && s == v && validName(k) {
			return "data." + k
		}
	}
	return ""
}

func sortedAnyKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func labelKey(l map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(l) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

type exceptionYAML struct {
	Name   string     `yaml:"name"`
	Fields []string   `yaml:"fields,flow"`
	Comps  []string   `yaml:"comps,flow"`
	Values [][]string `yaml:"values,flow"`
}

type overrideYAML struct {
	Rule       string          `yaml:"rule"`
	Override   string          `yaml:"override"`
	Exceptions []exceptionYAML `yaml:"exceptions"`
}

// proposalsYAML writes proposals as a rule file of exception overrides, one item per rule.
func proposalsYAML(ps []Proposal) (string, error) {
	var items []overrideYAML
	idx := map[string]int{}
	for _, p := range ps {
		if len(p.Fields) == 0 {
			continue
		}
		i, ok := idx[p.Rule]
		if !ok {
			i = len(items)
			idx[p.Rule] = i
			items = append(items, overrideYAML{Rule: p.Rule, Override: "append"})
		}
		comps := make([]string, len(p.Fields))
		for j := range comps {
			comps[j] = "="
		}
		h := sha256.Sum256([]byte(p.Rule + "\x00" + labelKey(p.Labels)))
		items[i].Exceptions = append(items[i].Exceptions, exceptionYAML{Name: "false_positive_" + hex.EncodeToString(h[:4]),
			Fields: p.Fields, Comps: comps, Values: [][]string{p.Values}})
	}
	if len(items) == 0 {
		return "", nil
	}
	b, err := yaml.Marshal(items)
	if err != nil {
		return "", err
	}
	return "# Exceptions proposed by pipewarden from false-positive feedback. Review each one, then add\n" +
		"# this file after the rules it overrides. Nothing is applied automatically.\n" + string(b), nil
}
