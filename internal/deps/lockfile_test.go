package deps_test

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/deps"
)

func TestParseLockfileFormats(t *testing.T) {
	tests := []struct {
		file, format string
		want         map[string]string // normalized name -> version
		lines        map[string]int    // normalized name -> line
		hashed       []string          // packages that must carry hashes
	}{
		{"requirements.txt", "requirements",
			map[string]string{"certifi": "2024.8.30", "charset-normalizer": "3.4.0", "idna": "3.10", "numpy": "1.26.4", "requests": "2.32.3", "torch": "1.13.0", "urllib3": "2.2.3"},
			map[string]int{"certifi": 7, "torch": 29, "urllib3": 33}, []string{"certifi", "torch"}},
		{"poetry.lock", "poetry",
			map[string]string{"numpy": "1.26.4", "torch": "1.13.0", "transformers": "4.37.2", "typing-extensions": "4.12.2"},
			map[string]int{"numpy": 4, "torch": 15, "transformers": 31}, []string{"numpy", "torch"}},
		{"Pipfile.lock", "pipenv",
			map[string]string{"mlflow": "2.9.1", "requests": "2.32.3", "pytest": "8.3.3"},
			map[string]int{"mlflow": 19, "requests": 27, "pytest": 38}, []string{"mlflow"}},
		{"pdm.lock", "pdm",
			map[string]string{"langchain": "0.0.235", "langchain-core": "0.1.10", "numpy": "1.26.4"},
			map[string]int{"langchain": 14, "langchain-core": 27, "numpy": 37}, []string{"langchain"}},
		{"uv.lock", "uv",
			map[string]string{"llama-index": "0.9.34", "pillow": "10.0.0"},
			map[string]int{"llama-index": 6, "pillow": 29}, []string{"llama-index", "pillow"}},
		{"pylock.toml", "pylock",
			map[string]string{"onnx": "1.12.0", "scikit-learn": "1.3.0"},
			map[string]int{"onnx": 7, "scikit-learn": 19}, []string{"onnx", "scikit-learn"}},
		{"environment.yml", "conda",
			map[string]string{"numpy": "1.13.1", "pandas": "2.2.3", "cudatoolkit": "11.8.0", "scipy": "", "pip": "24.2", "tensorflow": "2.6.0", "py": "1.11.0", "pytorchh": "1.0.0"},
			map[string]int{"numpy": 8, "cudatoolkit": 10, "tensorflow": 14, "pytorchh": 16}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			lf, err := deps.ParseLockfile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if lf.Format != tc.format {
				t.Errorf("format %q, want %q", lf.Format, tc.format)
			}
			if len(lf.Problems) != 0 {
				t.Errorf("problems: %+v", lf.Problems)
			}
			if got := names(lf.Packages); !maps.Equal(got, tc.want) {
				t.Errorf("packages %v, want %v", got, tc.want)
			}
			for _, p := range lf.Packages {
				if want, ok := tc.lines[p.Key]; ok && p.Location.Line != want {
					t.Errorf("%s at line %d, want %d", p.Key, p.Location.Line, want)
				}
				if p.Location.Path != filepath.Join("testdata", tc.file) {
					t.Errorf("%s location path %q", p.Key, p.Location.Path)
				}
				if slices.Contains(tc.hashed, p.Key) && len(p.Hashes) == 0 {
					t.Errorf("%s has no hashes", p.Key)
				}
			}
		})
	}
}

func TestCondaEcosystems(t *testing.T) {
	lf, err := deps.ParseLockfile("testdata/environment.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lf.Packages {
		want := deps.Conda
		if p.Key == "tensorflow" || p.Key == "py" || p.Key == "pytorchh" {
			want = deps.PyPI
		}
		if p.Ecosystem != want {
			t.Errorf("%s ecosystem %s, want %s", p.Key, p.Ecosystem, want)
		}
	}
}

func TestRequirementsIncludes(t *testing.T) {
	lf, err := deps.ParseLockfile("testdata/requirements-dev.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := names(lf.Packages)
	want := map[string]string{
		"numpy": "1.26.4", "pandas": "2.2.3", // from requirements-base.txt
		"pytest": "8.3.3", "black": "", "mlflow": "2.9.1", "scikit-learn": "1.5.2",
		"requests":     "2.31.0", // pinned by -c constraints.txt
		"llama-index":  "0.9.34",
		"tensorfllow":  "2.0.0",
		"example-tool": "",    // editable VCS requirement named by #egg=
		"localpkg":     "1.0", // a wheel path names its version
	}
	if !maps.Equal(got, want) {
		t.Errorf("packages\n got %v\nwant %v", got, want)
	}
	for _, p := range lf.Packages {
		switch p.Key {
		case "mlflow":
			if !slices.Equal(p.Extras, []string{"extras"}) || p.Marker != `python_version >= "3.9"` {
				t.Errorf("mlflow extras %q marker %q", p.Extras, p.Marker)
			}
		case "black":
			if p.Specifier != ">=24.1,<25" {
				t.Errorf("black specifier %q", p.Specifier)
			}
		case "scikit-learn":
			if p.Location.Line != 9 {
				t.Errorf("continued requirement at line %d, want 9 (its first line)", p.Location.Line)
			}
		case "numpy":
			if !strings.HasSuffix(p.Location.Path, "requirements-base.txt") || p.Location.Line != 1 {
				t.Errorf("included requirement located at %+v", p.Location)
			}
		}
	}
	if len(lf.Problems) != 1 || !strings.Contains(lf.Problems[0].Message, "include cycle") {
		t.Errorf("want one include-cycle problem, got %+v", lf.Problems)
	}
}

func TestRequirementsSelfInclude(t *testing.T) {
	lf, err := deps.ParseLockfile("testdata/requirements-loop.txt")
	if err != nil {
		t.Fatal(err)
	}
	if names(lf.Packages)["six"] != "1.16.0" || len(lf.Problems) != 1 || !strings.Contains(lf.Problems[0].Message, "cycle") {
		t.Errorf("packages %v problems %+v", names(lf.Packages), lf.Problems)
	}
}

func TestRequirementLines(t *testing.T) {
	tests := []struct {
		name, line string
		key, ver   string
		problem    string
	}{
		{"exact pin", "Flask==3.0.3", "flask", "3.0.3", ""},
		{"arbitrary equality", "legacy===2004d", "legacy", "2004d", ""},
		{"wildcard is not a pin", "django==4.2.*", "django", "", ""},
		{"two clauses are not a pin", "numpy>=1.20,==1.26.4", "numpy", "", ""},
		{"parenthesized", "zope.interface (==6.4)", "zope-interface", "6.4", ""},
		{"extras and marker", `uvicorn[standard]==0.30.6 ; sys_platform != "win32"`, "uvicorn", "0.30.6", ""},
		{"hash option", "idna==3.10 --hash=sha256:946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3", "idna", "3.10", ""},
		{"named url", "pip @ https://github.com/pypa/pip/archive/22.0.2.zip", "pip", "", ""},
		{"inline comment", "rich==13.8.1  # terminal output", "rich", "13.8.1", ""},
		{"malformed specifier", "numpy=>1.0", "", "", "malformed version specifier"},
		{"not a requirement", "!!!", "", "", "not a requirement"},
		{"unknown option", "--frobnicate", "", "", "unknown option"},
		{"remote include", "-r https://example.com/reqs.txt", "", "", "remote include"},
		{"include not followed from data", "-r other.txt", "", "", "not followed"},
		{"url without name", "https://example.com/pkg.tar.gz", "", "", "names no package"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lf, err := deps.ParseLockfileData("requirements.txt", []byte(tc.line+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.problem != "" {
				if len(lf.Problems) != 1 || !strings.Contains(lf.Problems[0].Message, tc.problem) {
					t.Fatalf("problems %+v, want one containing %q", lf.Problems, tc.problem)
				}
				if lf.Problems[0].Location.Line != 1 {
					t.Errorf("problem line %d", lf.Problems[0].Location.Line)
				}
				return
			}
			if len(lf.Problems) != 0 || len(lf.Packages) != 1 {
				t.Fatalf("packages %+v problems %+v", lf.Packages, lf.Problems)
			}
			if p := lf.Packages[0]; p.Key != tc.key || p.Version != tc.ver {
				t.Errorf("got %s %q, want %s %q", p.Key, p.Version, tc.key, tc.ver)
			}
		})
	}
}

func TestMalformedLockfilesAreProblems(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"poetry.lock", "[[package]\nname = "},
		{"Pipfile.lock", `{"default": {"x": `},
		{"pdm.lock", "[[package]]\nname = 1\n"},
		{"uv.lock", "version = \n"},
		{"pylock.toml", "[[packages]]\nname = \"x\"\n"},
		{"environment.yml", "dependencies: [a, b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lf, err := deps.ParseLockfileData(tc.name, []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(lf.Problems) == 0 || !lf.Problems[0].Fatal {
				t.Errorf("want a fatal problem, got %+v", lf.Problems)
			}
		})
	}
}

func TestUnsupportedAndUnreadable(t *testing.T) {
	if _, err := deps.ParseLockfile("testdata/Cargo.lock"); !errors.Is(err, deps.ErrUnsupported) {
		t.Errorf("Cargo.lock: %v, want ErrUnsupported", err)
	}
	if _, err := deps.ParseLockfile("testdata/missing-requirements.txt"); err == nil {
		t.Error("missing file parsed")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"llama_index": "llama-index", "Llama.Index": "llama-index", "zope__interface": "zope-interface",
		"scikit-learn": "scikit-learn", "  PyYAML ": "pyyaml", "a-_.b": "a-b",
	} {
		if got := deps.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
