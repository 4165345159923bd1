package modelscan

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// A schema-less protobuf wire walker: enough of saved_model.pb and ONNX ModelProto to reach op
// names, domains and external-data paths, skipping tensor payloads without reading them.

var errProto = errors.New("malformed protobuf")

type pbField struct {
	num int
	wt  int
	v   uint64 // varint value, or length of a length-delimited field
}

func (r *byteReader) varint() (uint64, error) {
	var x uint64
	for s := uint(0); s < 64; s += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		x |= uint64(b&0x7f) << s
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: varint too long", errProto)
}

// pbWalk walks the fields of a message ending at end. fn handles a field and returns true when
// it consumed a length-delimited payload; otherwise the payload is skipped.
func pbWalk(r *byteReader, end int64, depth int, fn func(f pbField) (bool, error)) error {
	if depth > 64 {
		return limitErr("protobuf nested deeper than 64")
	}
	for r.off < end {
		key, err := r.varint()
		if err != nil {
			return err
		}
		f := pbField{num: int(key >> 3), wt: int(key & 7)}
		if f.num == 0 {
			return fmt.Errorf("%w: field number 0", errProto)
		}
		switch f.wt {
		case 0:
			if f.v, err = r.varint(); err != nil {
				return err
			}
			if _, err := fn(f); err != nil {
				return err
			}
		case 1:
			err = r.skip(8)
		case 5:
			err = r.skip(4)
		case 2:
			if f.v, err = r.varint(); err != nil {
				return err
			}
			if f.v > uint64(end-r.off) {
				return fmt.Errorf("%w: field %d length %d past the message end", errProto, f.num, f.v)
			}
			start := r.off
			done, err := fn(f)
			if err != nil {
				return err
			}
			if !done {
				err = r.skip(int64(f.v))
			} else if r.off != start+int64(f.v) {
				return fmt.Errorf("%w: field %d not consumed exactly", errProto, f.num)
			}
		default:
			return fmt.Errorf("%w: wire type %d", errProto, f.wt)
		}
		if err != nil {
			return err
		}
	}
	if r.off != end {
		return fmt.Errorf("%w: message overruns its length", errProto)
	}
	return nil
}

func pbString(r *byteReader, f pbField, max int) (string, error) {
	if f.v > uint64(max) {
		return "", r.skip(int64(f.v))
	}
	b, err := r.next(int(f.v))
	return string(b), err
}

// riskyOps are TensorFlow ops that reach the file system or call back into Python.
var riskyOps = map[string]string{
	"ReadFile": "reads a file", "WriteFile": "writes a file", "MatchingFiles": "lists files",
	"PyFunc": "calls Python", "PyFuncStateless": "calls Python", "EagerPyFunc": "calls Python",
	"ImmutableConst": "maps a file into memory", "DeleteFile": "deletes a file", "Copy": "copies files",
	"FileSystemSetConfiguration": "configures file systems", "LoadLibrary": "loads a native library",
}

// scanProtobuf recognises saved_model.pb and ONNX models by walking them; it returns "" when
// the content is neither.
func (j *job) scanProtobuf(src *source, head []byte) string {
	if len(head) < 3 || head[0] != 0x08 || src.size < 0 {
		return ""
	}
	if head[1] == 0x01 && head[2] == 0x12 {
		if j.scanSavedModel(src) {
			return "tf-savedmodel"
		}
	}
	if head[1] >= 1 && head[1] <= 15 {
		if j.scanONNX(src) {
			return "onnx"
		}
	}
	return ""
}

type opHit struct {
	op, node string
}

func (j *job) scanSavedModel(src *source) bool {
	rc, err := src.stream()
	if err != nil {
		return false
	}
	defer rc.Close()
	r := newByteReader(rc, src.size)
	var hits []opHit
	graphs := 0
	var node func(end int64, d int) error
	node = func(end int64, d int) error {
		var h opHit
		err := pbWalk(r, end, d, func(f pbField) (bool, error) {
			if f.wt != 2 || (f.num != 1 && f.num != 2) {
				return false, nil
			}
			s, err := pbString(r, f, 4096)
			if f.num == 1 {
				h.node = s
			} else {
				h.op = s
			}
			return true, err
		})
		if _, ok := riskyOps[h.op]; ok {
			hits = append(hits, h)
		}
		return err
	}
	graph := func(end int64, d int) error {
		graphs++
		return pbWalk(r, end, d, func(f pbField) (bool, error) {
			switch {
			case f.num == 1 && f.wt == 2: // NodeDef
				return true, node(r.off+int64(f.v), d+1)
			case f.num == 2 && f.wt == 2: // FunctionDefLibrary
				return true, pbWalk(r, r.off+int64(f.v), d+1, func(f pbField) (bool, error) {
					if f.num != 1 || f.wt != 2 {
						return false, nil
					}
					return true, pbWalk(r, r.off+int64(f.v), d+2, func(f pbField) (bool, error) {
						if f.num != 3 || f.wt != 2 { // FunctionDef.node_def
							return false, nil
						}
						return true, node(r.off+int64(f.v), d+3)
					})
				})
			}
			return false, nil
		})
	}
	err = pbWalk(r, src.size, 0, func(f pbField) (bool, error) {
		switch {
		case f.num == 1 && f.wt == 0:
			return false, nil
		case f.num == 2 && f.wt == 2: // MetaGraphDef
			return true, pbWalk(r, r.off+int64(f.v), 1, func(f pbField) (bool, error) {
				if f.num == 2 && f.wt == 2 {
					return true, graph(r.off+int64(f.v), 2)
				}
				return false, nil
			})
		}
		return false, fmt.Errorf("%w: not a SavedModel", errProto)
	})
	if err != nil && !errors.Is(err, errLimit) {
		return false
	}
	if err != nil {
		j.inconclusive("SavedModel", err)
	}
	if graphs == 0 {
		return err != nil
	}
	for _, h := range hits {
		j.add(RuleSavedModelOp, finding.High, "TensorFlow op "+h.op+" "+riskyOps[h.op], map[string]any{"op": h.op, "node": h.node})
	}
	return true
}

// standardDomains are the ONNX operator domains runtimes implement themselves.
var standardDomains = map[string]bool{"": true, "ai.onnx": true, "ai.onnx.ml": true, "ai.onnx.training": true,
	"ai.onnx.preview.training": true, "com.microsoft": true, "com.microsoft.nchwc": true,
	"com.microsoft.experimental": true, "ai.onnx.contrib": false}

func (j *job) scanONNX(src *source) bool {
	rc, err := src.stream()
	if err != nil {
		return false
	}
	defer rc.Close()
	r := newByteReader(rc, src.size)
	var locations []string
	domains := map[string]bool{}
	haveGraph := false
	var graph, tensor func(end int64, d int) error
	tensor = func(end int64, d int) error {
		return pbWalk(r, end, d, func(f pbField) (bool, error) {
			if f.num != 13 || f.wt != 2 { // external_data
				return false, nil
			}
			var key, val string
			err := pbWalk(r, r.off+int64(f.v), d+1, func(f pbField) (bool, error) {
				if f.wt != 2 {
					return false, nil
				}
				s, err := pbString(r, f, 4096)
				if f.num == 1 {
					key = s
				} else if f.num == 2 {
					val = s
				}
				return true, err
			})
			if key == "location" {
				locations = append(locations, val)
			}
			return true, err
		})
	}
	attr := func(end int64, d int) error {
		return pbWalk(r, end, d, func(f pbField) (bool, error) {
			switch {
			case (f.num == 6 || f.num == 11) && f.wt == 2:
				return true, graph(r.off+int64(f.v), d+1)
			case (f.num == 5 || f.num == 10) && f.wt == 2:
				return true, tensor(r.off+int64(f.v), d+1)
			}
			return false, nil
		})
	}
	node := func(end int64, d int) error {
		return pbWalk(r, end, d, func(f pbField) (bool, error) {
			switch {
			case f.num == 7 && f.wt == 2:
				s, err := pbString(r, f, 4096)
				domains[s] = true
				return true, err
			case f.num == 5 && f.wt == 2:
				return true, attr(r.off+int64(f.v), d+1)
			}
			return false, nil
		})
	}
	graph = func(end int64, d int) error {
		return pbWalk(r, end, d, func(f pbField) (bool, error) {
			switch {
			case f.num == 1 && f.wt == 2:
				return true, node(r.off+int64(f.v), d+1)
			case f.num == 5 && f.wt == 2:
				return true, tensor(r.off+int64(f.v), d+1)
			case f.num == 15 && f.wt == 2:
				return true, pbWalk(r, r.off+int64(f.v), d+1, func(f pbField) (bool, error) {
					if (f.num == 1 || f.num == 2) && f.wt == 2 {
						return true, tensor(r.off+int64(f.v), d+2)
					}
					return false, nil
				})
			}
			return false, nil
		})
	}
	err = pbWalk(r, src.size, 0, func(f pbField) (bool, error) {
		switch {
		case f.num == 7 && f.wt == 2:
			haveGraph = true
			return true, graph(r.off+int64(f.v), 1)
		case f.num == 8 && f.wt == 2:
			return true, pbWalk(r, r.off+int64(f.v), 1, func(f pbField) (bool, error) {
				if f.num == 1 && f.wt == 2 {
					s, err := pbString(r, f, 4096)
					domains[s] = true
					return true, err
				}
				return false, nil
			})
		case f.num >= 1 && f.num <= 25:
			return false, nil
		}
		return false, fmt.Errorf("%w: not an ONNX model", errProto)
	})
	if (err != nil && !errors.Is(err, errLimit)) || !haveGraph {
		return false
	}
	if err != nil {
		j.inconclusive("ONNX model", err)
	}
	for d := range domains {
		if !standardDomains[d] {
			j.add(RuleONNXDomain, finding.Medium, "ONNX custom operator domain "+d, map[string]any{"domain": d})
		}
	}
	for _, loc := range locations {
		if why := escapesDir(j.path, loc); why != "" {
			j.add(RuleONNXExternal, finding.High, "ONNX external data path leaves the model directory", map[string]any{"location": loc, "reason": why})
		}
	}
	return true
}

// escapesDir says why an external-data location is not a plain path inside the directory of
// the model at modelPath, or "" when it is.
func escapesDir(modelPath, loc string) string {
	switch {
	case loc == "":
		return "empty location"
	case strings.ContainsRune(loc, 0):
		return "NUL byte in location"
	case filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) || (len(loc) > 1 && loc[1] == ':'):
		return "absolute path"
	}
	clean := filepath.Clean(filepath.FromSlash(strings.ReplaceAll(loc, `\`, "/")))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "path climbs out of the model directory"
	}
	dir := filepath.Dir(modelPath)
	if real, err := filepath.EvalSymlinks(filepath.Join(dir, clean)); err == nil {
		base, err2 := filepath.EvalSymlinks(dir)
		if err2 == nil {
			if rel, err := filepath.Rel(base, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return "symbolic link leads out of the model directory"
			}
		}
	}
	return ""
}
