package cvss

import (
	"fmt"
	"math"
	"strings"
)

// v4Metrics are the CVSS v4.0 metrics and their values (specification section 7). Multi-letter
// values are listed as words separated by spaces.
var v4Metrics = map[string]string{
	// base
	"AV": "NALP", "AC": "LH", "AT": "NP", "PR": "NLH", "UI": "NPA",
	"VC": "HLN", "VI": "HLN", "VA": "HLN", "SC": "HLN", "SI": "HLN", "SA": "HLN",
	// threat
	"E": "XAPU",
	// environmental
	"CR": "XHML", "IR": "XHML", "AR": "XHML",
	"MAV": "XNALP", "MAC": "XLH", "MAT": "XNP", "MPR": "XNLH", "MUI": "XNPA",
	"MVC": "XHLN", "MVI": "XHLN", "MVA": "XHLN", "MSC": "XHLN", "MSI": "XSHLN", "MSA": "XSHLN",
	// supplemental: accepted, never scored
	"S": "XNP", "AU": "XNY", "R": "XAUI", "V": "XDC", "RE": "XLMH", "U": "X Clear Green Amber Red",
}

var v4Base = []string{"AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"}

// V4 computes the CVSS v4.0 score of vector (specification section 8.2): the vector is placed in
// its MacroVector (six equivalence classes), which has a published score, and the score is lowered
// by the vector's mean severity distance from the MacroVector's highest-severity vectors,
// proportioned to the score gap to the next lower MacroVector.
//
// With base metrics only this is the base score (CVSS-B). Threat and environmental metrics, when
// the vector carries them, are applied as the specification says (CVSS-BT, -BE, -BTE), so a
// vendor's E:U lowers the score; supplemental metrics never change it.
func V4(vector string) (float64, error) {
	if !strings.HasPrefix(vector, "CVSS:4.0/") {
		return 0, fmt.Errorf("cvss vector %q: not a CVSS:4.0 vector", vector)
	}
	m, err := parseMetrics(vector, v4Metrics)
	if err != nil {
		return 0, err
	}
	if err := requireAll(vector, m, v4Base...); err != nil {
		return 0, err
	}
	v := v4Vector(m)
	if v.allNone() {
		return 0, nil
	}
	eq := v.macroVector()
	value := macroScores[eq.key()]

	// 1a. The maximal scoring difference per EQ: down to the next lower MacroVector, if any.
	lower := [5]float64{
		eq.lowerScore(0), eq.lowerScore(1), eq.lowerEQ3EQ6(), eq.lowerScore(3), eq.lowerScore(4),
	}
	// 1b. The severity distance from the first highest-severity vector the vector does not exceed.
	d := v.distances(eq)
	current := [5]float64{
		d["AV"] + d["PR"] + d["UI"],
		d["AC"] + d["AT"],
		d["VC"] + d["VI"] + d["VA"] + d["CR"] + d["IR"] + d["AR"],
		d["SC"] + d["SI"] + d["SA"],
		0, // EQ5 (E) has one value per MacroVector: no distance
	}
	depth := [5]float64{
		eq1Depth[eq[0]], eq2Depth[eq[1]], eq3eq6Depth[eq[2]][eq[5]], eq4Depth[eq[3]], 0,
	}
	// 1c, 1d and 2: proportion each distance to the MacroVector's depth, scale the gap by it, and
	// average over the EQs that have a lower MacroVector.
	const step = 0.1
	var sum float64
	n := 0
	for i := range lower {
		if math.IsNaN(lower[i]) {
			continue
		}
		n++
		if depth[i] == 0 {
			continue
		}
		sum += (value - lower[i]) * (current[i] / (depth[i] * step))
	}
	if n > 0 {
		value -= sum / float64(n)
	}
	// 3. Round to one decimal, half up.
	value = math.Min(math.Max(value, 0), 10)
	return math.Floor(value*10+0.5) / 10, nil
}

// v4Vector holds a parsed vector; its methods read metrics as the score uses them.
type v4Vector map[string]string

// get returns the value that counts for metric k: a modified (M...) environmental value
// overrides the base one, an unset E is its worst case A, and unset requirements are H.
func (v v4Vector) get(k string) string {
	switch k {
	case "E":
		if s := v[k]; s != "" && s != "X" {
			return s
		}
		return "A"
	case "CR", "IR", "AR":
		if s := v[k]; s != "" && s != "X" {
			return s
		}
		return "H"
	}
	if s := v["M"+k]; s != "" && s != "X" {
		return s
	}
	return v[k]
}

func (v v4Vector) is(k, val string) bool { return v.get(k) == val }

// allNone is the specification's shortcut: no impact on any system scores 0.
func (v v4Vector) allNone() bool {
	for _, k := range []string{"VC", "VI", "VA", "SC", "SI", "SA"} {
		if !v.is(k, "N") {
			return false
		}
	}
	return true
}

// macroLevels are the six EQ levels of a vector, 0 the most severe.
type macroLevels [6]int

func (v v4Vector) macroVector() macroLevels {
	var eq macroLevels
	// EQ1: AV, PR, UI.
	switch {
	case v.is("AV", "N") && v.is("PR", "N") && v.is("UI", "N"):
		eq[0] = 0
	case (v.is("AV", "N") || v.is("PR", "N") || v.is("UI", "N")) && !v.is("AV", "P"):
		eq[0] = 1
	default:
		eq[0] = 2
	}
	// EQ2: AC, AT.
	if !(v.is("AC", "L") && v.is("AT", "N")) {
		eq[1] = 1
	}
	// EQ3: VC, VI, VA.
	switch {
	case v.is("VC", "H") && v.is("VI", "H"):
		eq[2] = 0
	case v.is("VC", "H") || v.is("VI", "H") || v.is("VA", "H"):
		eq[2] = 1
	default:
		eq[2] = 2
	}
	// EQ4: SC, SI, SA; Safety (S) exists only as a modified value.
	switch {
	case v.is("SI", "S") || v.is("SA", "S"):
		eq[3] = 0
	case v.is("SC", "H") || v.is("SI", "H") || v.is("SA", "H"):
		eq[3] = 1
	default:
		eq[3] = 2
	}
	// EQ5: E.
	eq[4] = map[string]int{"A": 0, "P": 1, "U": 2}[v.get("E")]
	// EQ6: the security requirements of the high impacts.
	if !((v.is("CR", "H") && v.is("VC", "H")) || (v.is("IR", "H") && v.is("VI", "H")) || (v.is("AR", "H") && v.is("VA", "H"))) {
		eq[5] = 1
	}
	return eq
}

func (eq macroLevels) key() string {
	var b [6]byte
	for i, l := range eq {
		b[i] = byte('0' + l)
	}
	return string(b[:])
}

// score is the MacroVector's published score, NaN when no such MacroVector exists.
func (eq macroLevels) score() float64 {
	s, ok := macroScores[eq.key()]
	if !ok {
		return math.NaN()
	}
	return s
}

// lowerScore is the score of the MacroVector one level less severe in EQ i.
func (eq macroLevels) lowerScore(i int) float64 {
	eq[i]++
	return eq.score()
}

// lowerEQ3EQ6 steps EQ3 and EQ6 together, since their levels constrain each other (EQ3 level 2
// exists only with EQ6 level 1): 00 has two lower neighbours, 01 and 10, and the higher counts.
func (eq macroLevels) lowerEQ3EQ6() float64 {
	switch {
	case eq[2] == 0 && eq[5] == 0:
		left, right := eq, eq
		left[5]++
		right[2]++
		return math.Max(left.score(), right.score())
	case eq[2] == 1 && eq[5] == 0:
		eq[5]++
	default: // 01 -> 11, 11 -> 21, 21 -> none
		eq[2]++
	}
	return eq.score()
}

// severity levels of metric values, in steps of 0.1 (specification section 8.2).
var v4Levels = map[string]map[string]float64{
	"AV": {"N": 0, "A": 0.1, "L": 0.2, "P": 0.3},
	"PR": {"N": 0, "L": 0.1, "H": 0.2},
	"UI": {"N": 0, "P": 0.1, "A": 0.2},
	"AC": {"L": 0, "H": 0.1},
	"AT": {"N": 0, "P": 0.1},
	"VC": {"H": 0, "L": 0.1, "N": 0.2},
	"VI": {"H": 0, "L": 0.1, "N": 0.2},
	"VA": {"H": 0, "L": 0.1, "N": 0.2},
	"SC": {"H": 0.1, "L": 0.2, "N": 0.3},
	"SI": {"S": 0, "H": 0.1, "L": 0.2, "N": 0.3},
	"SA": {"S": 0, "H": 0.1, "L": 0.2, "N": 0.3},
	"CR": {"H": 0, "M": 0.1, "L": 0.2},
	"IR": {"H": 0, "M": 0.1, "L": 0.2},
	"AR": {"H": 0, "M": 0.1, "L": 0.2},
}

var distanceMetrics = []string{"AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR"}

// distances returns, per metric, how far the vector is below the first of its MacroVector's
// highest-severity vectors that it does not exceed anywhere (the last one when every candidate is
// exceeded somewhere).
func (v v4Vector) distances(eq macroLevels) map[string]float64 {
	var d map[string]float64
	for _, e1 := range eq1Max[eq[0]] {
		for _, e2 := range eq2Max[eq[1]] {
			for _, e36 := range eq3eq6Max[eq[2]][eq[5]] {
				for _, e4 := range eq4Max[eq[3]] {
					max := e1 + "/" + e2 + "/" + e36 + "/" + e4
					d = make(map[string]float64, len(distanceMetrics))
					ok := true
					for _, part := range strings.Split(max, "/") {
						k, val, _ := strings.Cut(part, ":")
						d[k] = v4Levels[k][v.get(k)] - v4Levels[k][val]
						if d[k] < 0 {
							ok = false
						}
					}
					if ok {
						return d
					}
				}
			}
		}
	}
	return d
}

// The highest-severity vectors of each EQ level and the depth of each level (its largest severity
// distance + 1), as published with the specification's reference implementation (FIRSTdotorg/
// cvss-v4-calculator @c5b0d409, max_composed.js and max_severity.js). EQ5 has a single vector per
// level and takes no part in distances.
var (
	eq1Max = [3][]string{
		{"AV:N/PR:N/UI:N"},
		{"AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"},
		{"AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"},
	}
	eq2Max = [2][]string{
		{"AC:L/AT:N"},
		{"AC:H/AT:N", "AC:L/AT:P"},
	}
	eq3eq6Max = [3][2][]string{
		{
			{"VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"},
			{"VC:H/VI:H/VA:L/CR:M/IR:M/AR:H", "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M"},
		},
		{
			{"VC:L/VI:H/VA:H/CR:H/IR:H/AR:H", "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H"},
			{"VC:L/VI:H/VA:L/CR:H/IR:M/AR:H", "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M", "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
				"VC:H/VI:L/VA:L/CR:M/IR:H/AR:H", "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M"},
		},
		{
			nil, // EQ3 level 2 with EQ6 level 0 cannot happen
			{"VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"},
		},
	}
	eq4Max = [3][]string{
		{"SC:H/SI:S/SA:S"},
		{"SC:H/SI:H/SA:H"},
		{"SC:L/SI:L/SA:L"},
	}
	eq1Depth    = [3]float64{1, 4, 5}
	eq2Depth    = [2]float64{1, 2}
	eq3eq6Depth = [3][2]float64{{7, 6}, {8, 8}, {0, 10}}
	eq4Depth    = [3]float64{6, 5, 4}
)
