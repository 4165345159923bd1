package deps

import (
	"bufio"
	_ "embed"
	"strings"
)

//go:embed names/top.txt
var topNames string

//go:embed names/ml.txt
var mlNames string

// topTargets is how many of the most downloaded names typosquats are looked for against.
const topTargets = 1000

// Typosquats finds names that look like a mutation of a popular package name.
type Typosquats struct {
	targets  []string        // popular names, most popular first
	known    map[string]bool // real, popular names: never reported
	stripped map[string]string
	glyphs   map[string]string
}

// Squat is a likely typosquat: the popular name it imitates and how.
type Squat struct {
	Target    string
	Technique string // separator, homoglyph, repeated letter, transposed letters, one-letter edit
	Strong    bool   // a deliberate-looking mutation rather than a plain edit distance of one
}

// NewTyposquats builds a detector. targets are the names to protect, most popular first; known
// are real names that are never reported (targets are always known).
func NewTyposquats(targets, known []string) *Typosquats {
	t := &Typosquats{known: map[string]bool{}, stripped: map[string]string{}, glyphs: map[string]string{}}
	for _, n := range known {
		t.known[Normalize(n)] = true
	}
	for _, n := range targets {
		n = Normalize(n)
		if n == "" {
			continue
		}
		t.known[n] = true
		t.targets = append(t.targets, n)
		if _, ok := t.stripped[strings.ReplaceAll(n, "-", "")]; !ok {
			t.stripped[strings.ReplaceAll(n, "-", "")] = n
		}
		if _, ok := t.glyphs[deglyph(n)]; !ok {
			t.glyphs[deglyph(n)] = n
		}
	}
	return t
}

// DefaultTyposquats uses the shipped lists: the 1,000 most downloaded PyPI names and the
// machine-learning names of names/ml.txt as targets, the 15,000 most downloaded as known.
func DefaultTyposquats() *Typosquats {
	top := readNames(topNames)
	targets := append(readNames(mlNames), top[:min(topTargets, len(top))]...)
	return NewTyposquats(targets, top)
}

// PopularNames returns the shipped target list (ML names first, then the most downloaded).
func PopularNames() []string {
	top := readNames(topNames)
	return append(readNames(mlNames), top[:min(topTargets, len(top))]...)
}

func readNames(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// homoglyphs are characters (or pairs) that read alike in a package name.
var homoglyphs = strings.NewReplacer("rn", "m", "vv", "w", "0", "o", "1", "l", "i", "l", "3", "e", "5", "s", "7", "t", "-", "")

func deglyph(s string) string { return homoglyphs.Replace(s) }

// Match reports whether name looks like a typosquat of a popular name.
func (t *Typosquats) Match(name string) (Squat, bool) {
	c := Normalize(name)
	if t.known[c] || len(c) < 4 {
		return Squat{}, false
	}
	if n, ok := t.stripped[strings.ReplaceAll(c, "-", "")]; ok {
		return Squat{Target: n, Technique: "separator", Strong: true}, true
	}
	if n, ok := t.glyphs[deglyph(c)]; ok {
		return Squat{Target: n, Technique: "homoglyph", Strong: true}, true
	}
	var weak *Squat
	for _, n := range t.targets {
		if len(n) < 4 || abs(len(n)-len(c)) > 1 {
			continue
		}
		switch {
		case repeatedLetter(c, n) || repeatedLetter(n, c):
			return Squat{Target: n, Technique: "repeated letter", Strong: true}, true
		case transposed(c, n):
			return Squat{Target: n, Technique: "transposed letters", Strong: true}, true
		case weak == nil && len(n) >= 6 && editDistanceOne(c, n):
			weak = &Squat{Target: n, Technique: "one-letter edit"}
		}
	}
	if weak != nil {
		return *weak, true
	}
	return Squat{}, false
}

// repeatedLetter reports whether long is short with one letter doubled (tensorfllow, pytorchh).
func repeatedLetter(long, short string) bool {
	if len(long) != len(short)+1 {
		return false
	}
	for i := 1; i < len(long); i++ {
		if long[i] == long[i-1] && long[:i]+long[i+1:] == short {
			return true
		}
	}
	return false
}

// transposed reports whether a and b differ by swapping two adjacent characters.
func transposed(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// editDistanceOne reports whether one insertion, deletion or substitution turns a into b.
func editDistanceOne(a, b string) bool {
	if a == b {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
