package app_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// TestDataBatchCheckedAgainstBaseline registers the iris baseline over the API, then sends a
// batch whose labels were flipped as inline records: the daemon reports it.
func TestDataBatchCheckedAgainstBaseline(t *testing.T) {
	path := fixtures + "/datasets/iris.csv"
	f, err := table.Open(path, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.Profile(f, dataset.ProfileOptions{Label: "label", Source: "iris.csv", Digest: f.Digest})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	h := start(t, nil, nil)
	if code, _, body := h.do("POST", "/v1/datasets/iris/baseline", h.token, "application/json", buf.String()); code != 201 {
		t.Fatalf("register baseline = %d %v", code, body)
	}
	if code, _, _ := h.do("POST", "/v1/datasets/iris/baseline", h.token, "application/json", `{"version": 99}`); code != 400 {
		t.Errorf("a baseline of another version must be refused with 400, got %d", code)
	}
	raw, _ := os.ReadFile(path)
	rows, _ := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	header := rows[0]
	var records []map[string]any
	for i, row := range rows[1:] {
		rec := map[string]any{}
		for j, col := range header {
			v, _ := strconv.ParseFloat(row[j], 64)
			rec[col] = v
		}
		if i%3 == 0 { // flip a third of the labels
			rec["label"] = float64((int(rec["label"].(float64)) + 1) % 3)
		}
		records = append(records, rec)
	}
	recJSON, _ := json.Marshal(records)
	ev := fmt.Sprintf(`{"specversion":"1.0","id":"iris-b1","source":"//etl","type":"pipewarden.data.batch","subject":"iris","data":{"dataset":"iris","source":"s3://lake/iris/b1.csv","rows":%d,"schema":[{"name":"label","type":"int"}],"digest":"sha256:1","records":%s}}`, len(records), recJSON)
	if code, _, body := h.do("POST", "/v1/events", h.token, ce, ev); code != 202 {
		t.Fatalf("post batch = %d %v", code, body)
	}
	items := waitFindings(t, h, "?subject=iris&severity=high", func(it []any) bool { return len(it) > 0 })
	s := toJSON(items)
	if !bytes.Contains([]byte(s), []byte("suspected_manipulation")) {
		t.Errorf("label flipping must be reported as suspected manipulation: %s", s)
	}
	_, _, ds := h.do("GET", "/v1/datasets", h.token, "", "")
	if !bytes.Contains([]byte(toJSON(ds)), []byte(`"iris"`)) {
		t.Errorf("GET /v1/datasets = %v", ds)
	}
}
