package alert_test

import (
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/alert"
)

func TestParseMatcher(t *testing.T) {
	labels := map[string]string{"severity": "critical", "rule": "data_schema_change", "subject": "a\"b"}
	tests := []struct {
		in      string
		wantErr bool
		match   bool
		str     string
	}{
		{in: `severity="critical"`, match: true, str: `severity="critical"`},
		{in: `severity = critical`, match: true, str: `severity="critical"`},
		{in: `severity!="critical"`, match: false},
		{in: `rule=~"data_.*"`, match: true, str: `rule=~"data_.*"`},
		{in: `rule=~"data"`, match: false}, // anchored
		{in: `rule!~"model_.*"`, match: true},
		{in: `subject="a\"b"`, match: true},
		{in: `missing=""`, match: true},
		{in: `missing!=""`, match: false},
		{in: `=x`, wantErr: true},
		{in: `1abc="x"`, wantErr: true},
		{in: `rule=="x"`, wantErr: true},
		{in: `rule`, wantErr: true},
		{in: `rule=~"("`, wantErr: true},
		{in: `rule="unterminated`, wantErr: true},
		{in: `rule=a"b`, wantErr: true},
		{in: `rule="` + strings.Repeat("x", 2000) + `"`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			m, err := alert.ParseMatcher(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if m.Matches(labels) != tc.match {
				t.Errorf("Matches = %v, want %v", !tc.match, tc.match)
			}
			if tc.str != "" && m.String() != tc.str {
				t.Errorf("String = %s, want %s", m.String(), tc.str)
			}
			// String must parse back to the same matcher.
			back, err := alert.ParseMatcher(m.String())
			if err != nil || back.Matcher != m.Matcher {
				t.Errorf("round trip %s -> %+v, %v", m.String(), back, err)
			}
		})
	}
	if _, err := alert.ParseMatchers(make([]string, 33)); err == nil {
		t.Error("more than 32 matchers must be refused")
	}
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{`severity="critical"`, `rule=~"a|b"`, `x!~".*"`, `a = b`, `a="\u00e9\n"`, `a=~"(?i)x{1000}"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := alert.ParseMatcher(s)
		if err != nil {
			return
		}
		_ = m.Matches(map[string]string{"a": s})
		back, err := alert.ParseMatcher(m.String())
		if err != nil || back.Matcher != m.Matcher {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, m.String(), back, err)
		}
	})
}
