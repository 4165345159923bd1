package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/pipewarden/pipewarden/internal/event"
)

// parseInference reads an inference event's endpoint and features. The common shape (plain
// ASCII keys, a plain string, an array of numbers) is read in one pass with the event
// scanner; anything else (escapes, nulls, non-ASCII keys, odd values) goes to encoding/json,
// so the result is always what json.Unmarshal into inferenceData gives.
func parseInference(b []byte) (inferenceData, error) {
	if d, ok := fastInference(b); ok {
		return d, nil
	}
	var d inferenceData
	err := json.Unmarshal(b, &d)
	return d, err
}

// errSlowPath stops the one-pass reader when encoding/json must decide.
var errSlowPath = errors.New("not the common shape")

func fastInference(b []byte) (d inferenceData, ok bool) {
	err := event.Members(b, func(key []byte, escaped bool, v []byte) error {
		if escaped || !ascii(key) {
			return errSlowPath // encoding/json folds non-ASCII key case its own way
		}
		switch {
		case bytes.EqualFold(key, []byte("endpoint")):
			s, ok := plainString(v)
			if !ok {
				return errSlowPath
			}
			d.Endpoint = s
		case bytes.EqualFold(key, []byte("features")):
			fs, ok := numbers(v)
			if !ok {
				return errSlowPath
			}
			d.Features = fs
		}
		return nil
	})
	return d, err == nil
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// plainString returns the JSON string v if it holds no escapes and is valid UTF-8
// (encoding/json replaces invalid bytes with U+FFFD).
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// numbers reads a JSON array of numbers.
func numbers(v []byte) ([]float64, bool) {
	if len(v) == 0 || v[0] != '[' {
		return nil, false
	}
	fs := make([]float64, 0, 16)
	err := event.Elements(v, func(e []byte) error {
		if c := e[0]; c != '-' && (c < '0' || c > '9') {
			return errSlowPath
		}
		f, err := strconv.ParseFloat(string(e), 64)
		if err != nil {
			return errSlowPath // out of range: encoding/json reports it
		}
		fs = append(fs, f)
		return nil
	})
	return fs, err == nil
}

// parseBatch reads the part of a data batch event the monitor uses, in one pass for the common
// shape and with encoding/json for anything else, so the result is always what json.Unmarshal
// into batchData gives.
func parseBatch(b []byte) (batchData, error) {
	if d, ok := fastBatch(b); ok {
		return d, nil
	}
	var d batchData
	err := json.Unmarshal(b, &d)
	return d, err
}

func fastBatch(b []byte) (d batchData, ok bool) {
	str := func(v []byte, to *string) error {
		s, ok := plainString(v)
		if !ok {
			return errSlowPath
		}
		*to = s
		return nil
	}
	err := event.Members(b, func(key []byte, escaped bool, v []byte) error {
		if escaped || !ascii(key) {
			return errSlowPath
		}
		switch {
		case bytes.EqualFold(key, []byte("dataset")):
			return str(v, &d.Dataset)
		case bytes.EqualFold(key, []byte("digest")):
			return str(v, &d.Digest)
		case bytes.EqualFold(key, []byte("path")):
			return str(v, &d.Path)
		case bytes.EqualFold(key, []byte("rows")):
			n, err := strconv.ParseInt(string(v), 10, 64) // "1.0", "1e3", overflow: encoding/json decides
			if err != nil || v[0] == '+' {
				return errSlowPath
			}
			d.Rows = n
		case bytes.EqualFold(key, []byte("records")):
			d.Records = v
		case bytes.EqualFold(key, []byte("schema")):
			if len(v) == 0 || v[0] != '[' {
				return errSlowPath
			}
			d.Schema = make([]struct {
				Name string `json:"name"`
			}, 0, 8)
			return event.Elements(v, func(e []byte) error {
				if e[0] != '{' {
					return errSlowPath
				}
				var col struct {
					Name string `json:"name"`
				}
				err := event.Members(e, func(k []byte, escaped bool, v []byte) error {
					if escaped || !ascii(k) {
						return errSlowPath
					}
					if bytes.EqualFold(k, []byte("name")) {
						return str(v, &col.Name)
					}
					return nil
				})
				d.Schema = append(d.Schema, col)
				return err
			})
		}
		return nil
	})
	return d, err == nil
}
