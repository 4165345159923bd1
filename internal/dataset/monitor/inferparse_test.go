package monitor

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

var inferenceSeeds = []string{
	`{"endpoint":"fraud-api","client":"key-0001","status":200,"latency_ms":3.5,"features":[0.1,-2,3e5,0,-0.0,1E-3]}`,
	`{"features":[1,2],"endpoint":"a","extra":{"x":[1,{"y":"z"}],"t":true,"f":false,"n":null}}`,
	`{"ENDPOINT":"upper","Features":[1]}`,
	`{"endpoint":"a","endpoint":"b","features":[1],"features":[2,3]}`,
	`{"endpoint":"esc\"aped","features":[1]}`,
	`{"endpoint":"a","features":[1,null,2]}`,
	`{"endpoint":"a","features":null}`,
	`{"endpoint":null,"features":[1]}`,
	`{"endpoint":"a","features":[1e400]}`,
	`{"endpoint":"a","features":["1"]}`,
	`{"endpoint":"a","features":[01]}`,
	`{"endpoint":"a","features":[]}`,
	` { "endpoint" : "a" , "features" : [ 1 , 2 ] } `,
	`{}`,
	`[]`,
	`{"endpoint":"a","features":[1,2]`,
	`{"endpoint":"\u00e9","features":[1]}`,
}

// parseInference must give exactly what encoding/json gives, on any input.
func FuzzParseInference(f *testing.F) {
	for _, s := range inferenceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParseInference(t, b)
	})
}

func TestParseInferenceMatchesEncodingJSON(t *testing.T) {
	for _, s := range inferenceSeeds {
		checkParseInference(t, []byte(s))
	}
	// The common shape takes the fast path.
	if _, ok := fastInference([]byte(inferenceSeeds[0])); !ok {
		t.Fatal("a plain inference event must not need encoding/json")
	}
}

func checkParseInference(t *testing.T, b []byte) {
	t.Helper()
	var want inferenceData
	werr := json.Unmarshal(b, &want)
	got, err := parseInference(b)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%q: error %v, encoding/json %v", b, err, werr)
	}
	if err != nil {
		return
	}
	if got.Endpoint != want.Endpoint || len(got.Features) != len(want.Features) || (got.Features == nil) != (want.Features == nil) {
		t.Fatalf("%q: got %+v, encoding/json %+v", b, got, want)
	}
	for i := range got.Features {
		if math.Float64bits(got.Features[i]) != math.Float64bits(want.Features[i]) {
			t.Fatalf("%q: feature %d = %v, encoding/json %v", b, i, got.Features[i], want.Features[i])
		}
	}
}

func BenchmarkParseInference(b *testing.B) {
	data := []byte(inferenceSeeds[0])
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			parseInference(data)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for range b.N {
			var d inferenceData
			json.Unmarshal(data, &d)
		}
	})
}

var batchSeeds = []string{
	`{"dataset":"customers","source":"s3://lake/customers","path":"part-00001.parquet","rows":1234,"schema":[{"name":"age","type":"int"},{"name":"income","type":"float"}],"digest":"sha256:00ff"}`,
	`{"dataset":"d","records":[{"a":1},{"a":2}],"schema":[]}`,
	`{"dataset":"d","records":null}`,
	`{"DATASET":"upper","Rows":1}`,
	`{"dataset":"a","dataset":"b","schema":[{"name":"x"}],"schema":[{"name":"y"},{"name":"z"}]}`,
	`{"dataset":"d","rows":1.5}`,
	`{"dataset":"d","rows":1e3}`,
	`{"dataset":"d","rows":-7}`,
	`{"dataset":"d","rows":99999999999999999999}`,
	`{"dataset":"d","rows":"1"}`,
	`{"dataset":"d","schema":[null]}`,
	`{"dataset":"d","schema":[{"name":null}]}`,
	`{"dataset":"d","schema":[{"name":1}]}`,
	`{"dataset":"d","schema":[{"NAME":"x","name":"y"}]}`,
	`{"dataset":"d","schema":{}}`,
	`{"dataset":null}`,
	`{"dataset":"\u00e9"}`,
	`{"dataset":"d","path":"p\\q"}`,
	`{"dataset":"d"`,
	`[]`,
}

// parseBatch must give exactly what encoding/json gives, on any input.
func FuzzParseBatch(f *testing.F) {
	for _, s := range batchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParseBatch(t, b)
	})
}

func TestParseBatchMatchesEncodingJSON(t *testing.T) {
	for _, s := range batchSeeds {
		checkParseBatch(t, []byte(s))
	}
	if _, ok := fastBatch([]byte(batchSeeds[0])); !ok {
		t.Fatal("a plain data batch event must not need encoding/json")
	}
}

func checkParseBatch(t *testing.T, b []byte) {
	t.Helper()
	var want batchData
	werr := json.Unmarshal(b, &want)
	got, err := parseBatch(b)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%q: error %v, encoding/json %v", b, err, werr)
	}
	if err != nil {
		return
	}
	if got.Dataset != want.Dataset || got.Rows != want.Rows || got.Digest != want.Digest || got.Path != want.Path ||
		!bytes.Equal(got.Records, want.Records) || (got.Schema == nil) != (want.Schema == nil) || len(got.Schema) != len(want.Schema) {
		t.Fatalf("%q: got %+v, encoding/json %+v", b, got, want)
	}
	for i := range got.Schema {
		if got.Schema[i] != want.Schema[i] {
			t.Fatalf("%q: column %d = %+v, encoding/json %+v", b, i, got.Schema[i], want.Schema[i])
		}
	}
}
