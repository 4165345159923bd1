package dataset_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

func FuzzDecodeBaseline(f *testing.F) {
	r, _ := table.NewReader(strings.NewReader("x,y,label\n1,2,a\n2,3,b\n3,1,a\n4,4,b\n5,0,a\n"), "csv", table.Options{})
	b, err := dataset.Profile(r, dataset.ProfileOptions{Label: "label"})
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	b.Encode(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"pipewarden.dataset.baseline","version":1}`))
	f.Add([]byte(`{"format":"pipewarden.dataset.baseline","version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := dataset.DecodeBaseline(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes must be usable by Check without panicking.
		r, _ := table.NewReader(strings.NewReader("x,y,label\n1,2,a\n"), "csv", table.Options{})
		dataset.Check(b, r, dataset.CheckOptions{})
	})
}
