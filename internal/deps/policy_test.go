package deps_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/deps"
	"github.com/pipewarden/pipewarden/internal/finding"
)

func TestPinningPolicy(t *testing.T) {
	tests := []struct {
		name               string
		data               string
		unpinned, unhashed []string
	}{
		{"project that pins", "a==1\nb==2\nc>=3\nd\n", []string{"c", "d"}, nil},
		{"project that does not pin", "a>=1\nb\nc==3\n", nil, nil},
		{"hashes everywhere but one", "a==1 --hash=sha256:aa\nb==2 --hash=sha256:bb\nc==3\n", nil, []string{"c"}},
		{"require-hashes mode", "--require-hashes\na==1\n", nil, []string{"a"}},
		{"constraint pins a requirement", "-r x.txt\n", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lf, err := deps.ParseLockfileData("requirements.txt", []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			fs := deps.Check(lf, deps.Options{})
			var unpinned, unhashed []string
			for _, f := range byRule(fs, deps.RuleUnpinned) {
				unpinned = append(unpinned, f.Subject.Name)
			}
			for _, f := range byRule(fs, deps.RuleUnhashed) {
				unhashed = append(unhashed, f.Subject.Name)
			}
			if !slices.Equal(unpinned, tc.unpinned) || !slices.Equal(unhashed, tc.unhashed) {
				t.Errorf("unpinned %q unhashed %q, want %q %q", unpinned, unhashed, tc.unpinned, tc.unhashed)
			}
		})
	}
}

func TestUnparsedIsNeverClean(t *testing.T) {
	lf, err := deps.ParseLockfileData("poetry.lock", []byte("[[package]\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := byRule(deps.Check(lf, deps.Options{}), deps.RuleUnparsed)
	if len(fs) != 1 || fs[0].Severity != finding.High {
		t.Fatalf("findings %+v", fs)
	}
}

func TestUnresolvedVersionsAreReported(t *testing.T) {
	lf, err := deps.ParseLockfileData("requirements.txt", []byte("torch>=1.0\nnumpy==1.26.4\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := byRule(deps.Check(lf, deps.Options{DB: loadDB(t, fixtures)}), deps.RuleUnresolved)
	if len(fs) != 1 || !slices.Equal(fs[0].Evidence["packages"].([]string), []string{"torch"}) {
		t.Fatalf("findings %+v", fs)
	}
}

func TestDiff(t *testing.T) {
	approved := []deps.Package{pkg("numpy", "1.26.4"), pkg("torch", "2.1.0"), pkg("pandas", "2.2.3"), pkg("six", "1.16.0"), pkg("Foo", "1.0")}
	current := []deps.Package{pkg("numpy", "1.26.3"), pkg("torch", "2.2.0"), pkg("pandas", "2.2.3"), pkg("requests", "2.32.3"), pkg("foo", "1.0.0+local")}
	ch := deps.Diff(approved, current)
	if len(ch.Added) != 1 || ch.Added[0].Name != "requests" || ch.Added[0].Version != "2.32.3" {
		t.Errorf("added %+v", ch.Added)
	}
	if len(ch.Removed) != 1 || ch.Removed[0].Name != "six" {
		t.Errorf("removed %+v", ch.Removed)
	}
	kinds := map[string]string{}
	for _, c := range ch.Changed {
		kinds[c.Name] = c.Kind
	}
	want := map[string]string{"numpy": "downgraded", "torch": "upgraded", "foo": "upgraded"}
	if len(kinds) != len(want) || kinds["numpy"] != want["numpy"] || kinds["torch"] != want["torch"] || kinds["foo"] != want["foo"] {
		t.Errorf("changed %v, want %v", kinds, want)
	}
	fs := ch.Findings("requirements.txt", "approved.txt", time.Unix(0, 0))
	rules := map[string]finding.Severity{}
	for _, f := range fs {
		rules[f.Rule+" "+f.Subject.Name] = f.Severity
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
	if rules["deps.downgraded numpy"] != finding.Medium || rules["deps.added requests"] != finding.Low || rules["deps.removed six"] != finding.Info {
		t.Errorf("finding severities %v", rules)
	}
	if !deps.Diff(approved, approved).Empty() {
		t.Error("a lockfile differs from itself")
	}
}
