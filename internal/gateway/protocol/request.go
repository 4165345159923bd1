// Package protocol reads the inference requests and responses of the model-serving protocols the
// gateway fronts (KServe / Open Inference Protocol v2 and Triton JSON, TF Serving REST, MLflow
// invocations, OpenAI-compatible JSON, raw TorchServe bodies) only as far as the gateway needs:
// the feature vectors, the predicted classes, lengths, and a hash of what is opaque. It walks the
// JSON once without building it, with limits on depth and value count.
package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Kind names a serving protocol.
type Kind string

// The protocols the gateway understands.
const (
	KServeV2  Kind = "kserve-v2"
	TFServing Kind = "tf-serving"
	MLflow    Kind = "mlflow"
	OpenAI    Kind = "openai"
	Raw       Kind = "raw"
)

// Kinds lists the protocols in documentation order.
func Kinds() []Kind { return []Kind{KServeV2, TFServing, MLflow, OpenAI, Raw} }

// ParseKind reads a protocol name; "triton" and "torchserve" are aliases of kserve-v2 and raw.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "kserve-v2", "kserve", "triton", "oip":
		return KServeV2, nil
	case "tf-serving", "tfserving", "tensorflow":
		return TFServing, nil
	case "mlflow":
		return MLflow, nil
	case "openai":
		return OpenAI, nil
	case "raw", "torchserve":
		return Raw, nil
	}
	return "", fmt.Errorf("unknown protocol %q (want kserve-v2, tf-serving, mlflow, openai or raw)", s)
}

// Limits bound the work spent on one body.
type Limits struct {
	MaxDepth  int // nesting of arrays and objects
	MaxValues int // numbers kept from one body
}

// DefaultLimits are generous for tabular and small-tensor models.
func DefaultLimits() Limits { return Limits{MaxDepth: 64, MaxValues: 1 << 20} }

// Meta is what the parser needs from the HTTP request besides the body.
type Meta struct {
	ContentType string
	// HeaderLength is the KServe binary-tensor extension's Inference-Header-Content-Length, or
	// -1 when the header is absent. The binary part after it is only hashed.
	HeaderLength int
}

// Request is what the gateway keeps of one inference request. Reuse one with Reset to avoid
// allocation.
type Request struct {
	Rows  int       // instances in the batch
	Width int       // features per row; -1 when the rows differ
	Vals  []float64 // row-major when Width >= 0
	// Opaque counts the bytes that were hashed rather than read (binary tensors, b64 and other
	// strings, raw bodies); Hash is FNV-1a over them.
	Opaque int
	Hash   uint64
	// Messages and Chars are the OpenAI-compatible lengths.
	Messages, Chars int
}

// Reset empties r and keeps its capacity.
func (r *Request) Reset() {
	*r = Request{Vals: r.Vals[:0]}
}

// Row returns row i (Width >= 0 only).
func (r *Request) Row(i int) []float64 { return r.Vals[i*r.Width : (i+1)*r.Width] }

// ShapeError is a tensor whose declared shape does not match its data.
type ShapeError struct {
	Input  string
	Shape  []int
	Values int
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("input %q: shape %v does not match %d values", e.Input, e.Shape, e.Values)
}

// ErrUnsupported is a body the protocol's parser does not recognise (no known top-level key).
var ErrUnsupported = errors.New("no inference inputs found")

type opaqueSum struct {
	n     int // bytes
	items int // values
	h     uint64
}

func (o *opaqueSum) add(b []byte) {
	if o.h == 0 {
		o.h = 14695981039346656037
	}
	for _, c := range b {
		o.h ^= uint64(c)
		o.h *= 1099511628211
	}
	o.n += len(b)
	o.items++
}

// Parser reads requests of one protocol.
type Parser struct {
	kind   Kind
	limits Limits
}

// NewParser returns a parser for kind; zero limits take the defaults.
func NewParser(kind Kind, l Limits) *Parser {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = d.MaxValues
	}
	return &Parser{kind: kind, limits: l}
}

// Kind is the parser's protocol.
func (p *Parser) Kind() Kind { return p.kind }

// Parse reads body into dst (after dst.Reset()).
func (p *Parser) Parse(body []byte, m Meta, dst *Request) error {
	dst.Reset()
	s := &scanner{b: body, maxDepth: p.limits.MaxDepth, maxValues: p.limits.MaxValues}
	var op opaqueSum
	var err error
	switch p.kind {
	case KServeV2:
		if m.HeaderLength >= 0 {
			if m.HeaderLength > len(body) {
				return fmt.Errorf("inference header length %d exceeds body of %d bytes", m.HeaderLength, len(body))
			}
			s.b = body[:m.HeaderLength]
			op.add(body[m.HeaderLength:])
		}
		err = parseKServe(s, dst, &op)
	case TFServing:
		s.nonFinite = true
		err = parseTF(s, dst, &op)
	case MLflow:
		if isCSV(m.ContentType) {
			err = parseCSV(body, p.limits, dst, &op)
		} else {
			s.nonFinite = true
			err = parseMLflow(s, dst, &op)
		}
	case OpenAI:
		err = parseOpenAI(s, dst, &op)
	case Raw:
		op.add(body)
	default:
		return fmt.Errorf("unknown protocol %q", p.kind)
	}
	dst.Opaque, dst.Hash = op.n, op.h
	if err == nil && s.err != nil {
		err = s.err
	}
	return err
}

func isCSV(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "text/csv") || strings.HasPrefix(ct, "application/csv")
}

// block is one tensor's values within dst.Vals: rows of a uniform width, or ragged (width -1).
type block struct {
	start, end  int
	rows, width int
}

// finish sets dst's rows and width from the tensors read, interleaving several tensors of the
// same batch size into rows (Triton models with one input per feature).
func finish(dst *Request, blocks []block) {
	switch {
	case len(blocks) == 0:
		dst.Rows, dst.Width = 0, 0
		return
	case len(blocks) == 1:
		dst.Rows, dst.Width = blocks[0].rows, blocks[0].width
		return
	}
	rows, width := blocks[0].rows, 0
	for _, b := range blocks {
		if b.rows != rows || b.width < 0 {
			dst.Rows, dst.Width = 1, len(dst.Vals)
			return
		}
		width += b.width
	}
	if rows == 1 {
		dst.Rows, dst.Width = 1, width
		return
	}
	out := make([]float64, 0, len(dst.Vals))
	for r := 0; r < rows; r++ {
		for _, b := range blocks {
			out = append(out, dst.Vals[b.start+r*b.width:b.start+(r+1)*b.width]...)
		}
	}
	dst.Vals = out
	dst.Rows, dst.Width = rows, width
}

// rowsOf reads an array whose elements are rows, as a block.
func rowsOf(s *scanner, dst *Request, op *opaqueSum) (block, error) {
	b := block{start: len(dst.Vals), width: -2}
	err := s.array(func(int) error {
		before := len(dst.Vals)
		var err error
		dst.Vals, err = s.flatten(dst.Vals, op)
		w := len(dst.Vals) - before
		switch {
		case b.width == -2:
			b.width = w
		case b.width != w:
			b.width = -1
		}
		b.rows++
		return err
	})
	if b.width == -2 {
		b.width = 0
	}
	b.end = len(dst.Vals)
	return b, err
}
