package protocol_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

func parse(t *testing.T, k protocol.Kind, body string, m protocol.Meta) (*protocol.Request, error) {
	t.Helper()
	var r protocol.Request
	err := protocol.NewParser(k, protocol.Limits{}).Parse([]byte(body), m, &r)
	return &r, err
}

var noHeader = protocol.Meta{HeaderLength: -1}

const binHead = `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`

func TestParseRequest(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name        string
		kind        protocol.Kind
		body        string
		meta        protocol.Meta
		rows, width int
		vals        []float64
		opaque      bool
	}{
		{"kserve flat", protocol.KServeV2, `{"id":"1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`, noHeader, 2, 3, []float64{1, 2, 3, 4, 5, 6}, false},
		{"kserve nested", protocol.KServeV2, `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1.5,-2e3],[0.25,7]]}]}`, noHeader, 2, 2, []float64{1.5, -2000, 0.25, 7}, false},
		{"kserve one row 1-D", protocol.KServeV2, `{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`, noHeader, 1, 4, []float64{1, 2, 3, 4}, false},
		{"kserve per-feature inputs interleaved", protocol.KServeV2, `{"inputs":[{"name":"a","shape":[2,1],"datatype":"FP32","data":[1,2]},{"name":"b","shape":[2,2],"datatype":"FP32","data":[10,11,20,21]}]}`, noHeader, 2, 3, []float64{1, 10, 11, 2, 20, 21}, false},
		{"kserve bool and bytes", protocol.KServeV2, `{"inputs":[{"name":"b","shape":[1,2],"datatype":"BOOL","data":[true,false]},{"name":"s","shape":[1],"datatype":"BYTES","data":["hi"]}]}`, noHeader, 1, 2, []float64{1, 0}, true},
		{"kserve escaped key skipped", protocol.KServeV2, `{"para\u006deters":{"a":[1,2]},"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[3]}]}`, noHeader, 1, 1, []float64{3}, false},
		{"kserve binary extension", protocol.KServeV2, binHead + "\x00\x00\x80\x3f\x00\x00\x00\x40", protocol.Meta{HeaderLength: len(binHead)}, 0, 0, nil, true},
		{"tf instances", protocol.TFServing, `{"signature_name":"serving_default","instances":[[1,2],[3,NaN],[-Infinity,Infinity]]}`, noHeader, 3, 2, []float64{1, 2, 3, nan, math.Inf(-1), math.Inf(1)}, false},
		{"tf instances objects with b64", protocol.TFServing, `{"instances":[{"img":{"b64":"aGVsbG8="},"x":[1,2]},{"img":{"b64":"d29ybGQ="},"x":[3,4]}]}`, noHeader, 2, 2, []float64{1, 2, 3, 4}, true},
		{"tf columnar named", protocol.TFServing, `{"inputs":{"a":[1,2],"b":[[10,11],[20,21]]}}`, noHeader, 2, 3, []float64{1, 10, 11, 2, 20, 21}, false},
		{"tf columnar list", protocol.TFServing, `{"inputs":[[1,2,3]]}`, noHeader, 1, 3, []float64{1, 2, 3}, false},
		{"mlflow split", protocol.MLflow, `{"dataframe_split":{"columns":["a","b"],"data":[[1,2],[3,4]]}}`, noHeader, 2, 2, []float64{1, 2, 3, 4}, false},
		{"mlflow records", protocol.MLflow, `{"dataframe_records":[{"a":1,"b":2},{"a":3,"b":4}]}`, noHeader, 2, 2, []float64{1, 2, 3, 4}, false},
		{"mlflow instances", protocol.MLflow, `{"instances":[[5,6]]}`, noHeader, 1, 2, []float64{5, 6}, false},
		{"mlflow csv with header", protocol.MLflow, "a,b\n1,2\r\n3.5,-4\n", protocol.Meta{ContentType: "text/csv", HeaderLength: -1}, 2, 2, []float64{1, 2, 3.5, -4}, false},
		{"mlflow csv text field", protocol.MLflow, "1,x\n", protocol.Meta{ContentType: "text/csv; charset=utf-8", HeaderLength: -1}, 1, 2, []float64{1, nan}, true},
		{"openai chat", protocol.OpenAI, `{"model":"m","messages":[{"role":"user","content":"héllo"},{"role":"assistant","content":[{"type":"text","text":"abc"}]}]}`, noHeader, 1, 2, []float64{2, 5 + 4 + 3}, false},
		{"openai input list", protocol.OpenAI, `{"input":["ab","cde"]}`, noHeader, 1, 2, []float64{2, 5}, false},
		{"raw", protocol.Raw, "\x89PNG...", noHeader, 0, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parse(t, tc.kind, tc.body, tc.meta)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Rows != tc.rows || r.Width != tc.width {
				t.Errorf("rows×width = %d×%d, want %d×%d", r.Rows, r.Width, tc.rows, tc.width)
			}
			if !slices.EqualFunc(r.Vals, tc.vals, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("values = %v, want %v", r.Vals, tc.vals)
			}
			if (r.Opaque > 0) != tc.opaque || (r.Hash != 0) != tc.opaque {
				t.Errorf("opaque = %d bytes, hash %x; want opaque %v", r.Opaque, r.Hash, tc.opaque)
			}
		})
	}
}

func TestBinaryExtensionHashDependsOnTensorBytes(t *testing.T) {
	head := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	m := protocol.Meta{HeaderLength: len(head)}
	a, err := parse(t, protocol.KServeV2, head+"AAAAAAAA", m)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parse(t, protocol.KServeV2, head+"AAAAAAAB", m)
	if a.Hash == b.Hash || a.Opaque != 8 {
		t.Errorf("hashes %x %x (opaque %d): the binary tensor must be hashed", a.Hash, b.Hash, a.Opaque)
	}
	if _, err := parse(t, protocol.KServeV2, head, protocol.Meta{HeaderLength: len(head) + 1}); err == nil {
		t.Error("a header length past the body must be an error")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		kind  protocol.Kind
		body  string
		shape bool
		unsup bool
	}{
		{"shape mismatch", protocol.KServeV2, `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2]}]}`, true, false},
		{"negative dim", protocol.KServeV2, `{"inputs":[{"name":"x","shape":[-1,2],"datatype":"FP32","data":[1,2]}]}`, true, false},
		{"no inputs", protocol.KServeV2, `{"id":"x"}`, false, true},
		{"tf no instances", protocol.TFServing, `{"signature_name":"x"}`, false, true},
		{"nan not allowed in kserve", protocol.KServeV2, `{"inputs":[{"name":"x","data":[NaN]}]}`, false, false},
		{"trailing garbage", protocol.KServeV2, `{"inputs":[]} x`, false, false},
		{"truncated", protocol.TFServing, `{"instances":[[1,2`, false, false},
		{"bad number", protocol.TFServing, `{"instances":[[01]]}`, false, false},
		{"bad escape", protocol.OpenAI, `{"input":"\q"}`, false, false},
		{"too deep", protocol.TFServing, `{"instances":` + repeat("[", 100) + repeat("]", 100) + `}`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.kind, tc.body, noHeader)
			if err == nil {
				t.Fatal("want an error")
			}
			var se *protocol.ShapeError
			if errors.As(err, &se) != tc.shape {
				t.Errorf("err = %v; shape error wanted: %v", err, tc.shape)
			}
			if errors.Is(err, protocol.ErrUnsupported) != tc.unsup {
				t.Errorf("err = %v; unsupported wanted: %v", err, tc.unsup)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestClasses(t *testing.T) {
	tests := []struct {
		name string
		kind protocol.Kind
		body string
		want []int
	}{
		{"kserve probabilities", protocol.KServeV2, `{"model_name":"m","outputs":[{"name":"p","shape":[2,3],"datatype":"FP32","data":[0.1,0.7,0.2,0.8,0.1,0.1]}]}`, []int{1, 0}},
		{"kserve integer output preferred", protocol.KServeV2, `{"outputs":[{"name":"p","shape":[1,3],"datatype":"FP32","data":[0.1,0.7,0.2]},{"name":"label","shape":[1],"datatype":"INT64","data":[2]}]}`, []int{2}},
		{"kserve 1-D labels", protocol.KServeV2, `{"outputs":[{"name":"label","shape":[3],"datatype":"INT64","data":[0,2,1]}]}`, []int{0, 2, 1}},
		{"tf predictions", protocol.TFServing, `{"predictions":[[0.2,0.8],[0.9,0.1]]}`, []int{1, 0}},
		{"mlflow bare list", protocol.MLflow, `[1,0,2]`, []int{1, 0, 2}},
		{"mlflow regression", protocol.MLflow, `{"predictions":[0.37]}`, []int{0}},
		{"openai none", protocol.OpenAI, `{"choices":[]}`, []int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var scratch protocol.Request
			got, err := protocol.NewParser(tc.kind, protocol.Limits{}).Classes([]byte(tc.body), &scratch, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("classes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]protocol.Kind{"triton": protocol.KServeV2, "TF-Serving": protocol.TFServing, "torchserve": protocol.Raw, "openai": protocol.OpenAI} {
		if got, err := protocol.ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := protocol.ParseKind("grpc"); err == nil {
		t.Error("unknown protocol must be an error")
	}
}
