package rules

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// This file is the machinery of `pipewarden rules test`: replay events through an engine, list
// which rules fired on which event, and compare that with an expectation file. The default
// ruleset's own tests run through it too.

// Firing is one rule firing on one event (the event that completed it, for correlations).
type Firing struct {
	Event   string          `json:"event"`
	Rule    string          `json:"rule"`
	Finding finding.Finding `json:"finding"`
}

// maxEventLine bounds one JSONL line (the event decoder's per-event limit applies too).
const maxEventLine = 1 << 20

// ReadEvents reads JSON Lines of CloudEvents, validated like ingestion. Blank lines and lines
// starting with # are skipped. Errors name the input and line.
func ReadEvents(name string, r io.Reader, dec *event.Decoder) ([]event.Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var out []event.Event
	seen := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		// The scanner reuses its buffer and events keep slices of what they decode: copy.
		evs, err := dec.Decode(append([]byte(nil), b...))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		for _, ev := range evs {
			if prev, dup := seen[ev.ID]; dup {
				return nil, fmt.Errorf("%s:%d: event id %q already used on line %d", name, line, ev.ID, prev)
			}
			seen[ev.ID] = line
			out = append(out, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	return out, nil
}

// Replay evaluates events in order and returns every firing.
func Replay(e *Engine, events []event.Event) []Firing {
	var out []Firing
	for _, ev := range events {
		for _, f := range e.Evaluate(ev) {
			out = append(out, Firing{Event: ev.ID, Rule: f.Rule, Finding: f})
		}
	}
	return out
}

// Expectation maps event ids to the rules that must fire on them; events not listed must fire
// nothing.
type Expectation map[string][]string

// ParseExpectation reads an expectation file: a YAML mapping of event id to a list of rule ids
// (empty for a near-miss that must not fire).
func ParseExpectation(name string, data []byte) (Expectation, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	exp := Expectation{}
	if len(doc.Content) == 0 {
		return exp, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: m.Line, Msg: "an expectation file maps event ids to lists of rule ids"}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if _, dup := exp[k.Value]; dup {
			return nil, &Error{File: name, Line: k.Line, Msg: fmt.Sprintf("event %q listed twice", k.Value)}
		}
		var ids []string
		if v.Tag != "!!null" {
			if v.Kind != yaml.SequenceNode || v.Decode(&ids) != nil {
				return nil, &Error{File: name, Line: v.Line, Msg: fmt.Sprintf("event %q: want a list of rule ids", k.Value)}
			}
		}
		sort.Strings(ids)
		exp[k.Value] = ids
	}
	return exp, nil
}

// Diff compares firings with an expectation and describes each difference on one line, in
// event order. An expectation about an event that is not in the input is a difference too.
func Diff(exp Expectation, events []event.Event, got []Firing) []string {
	fired := map[string][]string{}
	for _, f := range got {
		fired[f.Event] = append(fired[f.Event], f.Rule)
	}
	var out []string
	known := map[string]bool{}
	for _, ev := range events {
		known[ev.ID] = true
		want := exp[ev.ID]
		have := fired[ev.ID]
		for _, r := range want {
			if !contains(have, r) {
				out = append(out, fmt.Sprintf("event %s: expected %s to fire, it did not", ev.ID, r))
			}
		}
		for _, r := range have {
			if !contains(want, r) {
				out = append(out, fmt.Sprintf("event %s: %s fired, not expected", ev.ID, r))
			}
		}
	}
	var missing []string
	for id := range exp {
		if !known[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	for _, id := range missing {
		out = append(out, fmt.Sprintf("event %s: listed in the expectation but not in the events", id))
	}
	return out
}

// FormatFirings writes firings as "EVENT  RULE  SEVERITY  TITLE" lines.
func FormatFirings(w io.Writer, fs []Firing) error {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", f.Event, f.Rule, f.Finding.Severity, f.Finding.Title)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
