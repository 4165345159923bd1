package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// writeJUnit writes one test case per input (passing when it has no finding) and one failing
// case per finding, so CI systems show each problem by name.
func writeJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{Name: nonEmpty(r.Command, "pipewarden")}
	withFindings := map[string]bool{}
	for _, f := range r.Sorted() {
		where := f.Subject.Name
		if f.Location != nil {
			where = f.Location.Path
		}
		withFindings[where] = true
		var body strings.Builder
		keys := make([]string, 0, len(f.Evidence))
		for k := range f.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&body, "%s: %v\n", k, f.Evidence[k])
		}
		suite.Cases = append(suite.Cases, junitCase{
			Name: fmt.Sprintf("%s: %s", f.Rule, where), Classname: suite.Name,
			Failure: &junitFailure{Message: f.Title, Type: f.Severity.String(), Body: body.String()},
		})
		suite.Failures++
	}
	for _, in := range r.Inputs {
		if !withFindings[in] {
			suite.Cases = append(suite.Cases, junitCase{Name: in, Classname: suite.Name})
		}
	}
	suite.Tests = len(suite.Cases)
	out := junitSuites{Name: nonEmpty(r.Tool, "pipewarden"), Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
