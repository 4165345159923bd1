package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Remote is a pipewarden server's audit API.
type Remote struct {
	BaseURL string // e.g. http://127.0.0.1:7700
	Token   string // bearer token (viewer role)
	Client  *http.Client
}

const maxResponse = 256 << 20

func (r Remote) get(ctx context.Context, path string, q url.Values, v any) error {
	u := strings.TrimSuffix(r.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, e.Error)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// VerifyRemote verifies a running server's log through its API: it fetches the latest
// checkpoint and every record it covers, recomputes the tree, compares it with the checkpoint
// and the witness, and checks the server's own consistency and inclusion proofs.
func VerifyRemote(ctx context.Context, r Remote, opts VerifyOptions) (*Result, error) {
	res := &Result{Source: r.BaseURL}
	var cj CheckpointJSON
	if err := r.get(ctx, "/v1/audit/checkpoint", nil, &cj); err != nil {
		return nil, err
	}
	v, err := trust(res, opts, cj.Key)
	if err != nil {
		return nil, err
	}
	if res.KeySource == "log" {
		res.KeySource = "server"
	}
	cps, err := readCheckpointLines(res, strings.NewReader(string(marshalNoteLine(noteLine{Note: cj.Note}))), v, "server checkpoint")
	if err != nil {
		return nil, err
	}
	size := cj.Size
	if len(cps) > 0 {
		size = cps[0].Size
	}
	t := newTally(res)
	for from := int64(0); from < size; {
		var page EntriesJSON
		q := url.Values{"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(size)}}
		if err := r.get(ctx, "/v1/audit/entries", q, &page); err != nil {
			return nil, err
		}
		if len(page.Entries) == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("the server returned no records from index %d", from))
			break
		}
		for _, e := range page.Entries {
			if e.Index != int64(len(t.leaves)) {
				return nil, fmt.Errorf("server sent record %d where %d was expected", e.Index, len(t.leaves))
			}
			t.add(e.Record, false)
		}
		from += int64(len(page.Entries))
	}
	t.classify()
	t.compare(cps, opts.Witness)
	if len(cps) == 0 {
		res.sort()
		return res, nil
	}
	top := cps[0]
	// The server's proofs must agree with the records it served and with the witness.
	var wcs []Checkpoint
	if opts.Witness != nil {
		for _, c := range opts.Witness.Checkpoints {
			if c.Size < top.Size {
				wcs = append(wcs, c)
			}
		}
	}
	if len(wcs) > 20 {
		wcs = wcs[len(wcs)-20:]
	}
	for _, c := range wcs {
		var pj ProofJSON
		q := url.Values{"from": {fmt.Sprint(c.Size)}, "to": {fmt.Sprint(top.Size)}}
		if err := r.get(ctx, "/v1/audit/proof/consistency", q, &pj); err != nil {
			res.add(c.Size, ProblemProof, "consistency proof %d -> %d: %v", c.Size, top.Size, err)
			continue
		}
		p, err := parseHashes64(pj.Proof)
		if err == nil {
			err = tlog.CheckTree(p, top.Size, top.Hash, c.Size, c.Hash)
		}
		if err != nil {
			res.add(c.Size, ProblemProof, "the server cannot prove its checkpoint of size %d extends the witnessed one of size %d: %v", top.Size, c.Size, err)
		}
	}
	for _, i := range []int64{0, top.Size / 2, top.Size - 1} {
		if i >= int64(len(t.leaves)) {
			continue
		}
		var pj ProofJSON
		q := url.Values{"index": {fmt.Sprint(i)}, "size": {fmt.Sprint(top.Size)}}
		if err := r.get(ctx, "/v1/audit/proof/inclusion", q, &pj); err != nil {
			res.add(i, ProblemProof, "inclusion proof of %d: %v", i, err)
			continue
		}
		p, err := parseHashes64(pj.Proof)
		if err == nil {
			err = tlog.CheckRecord(p, top.Size, top.Hash, i, t.leaves[i])
		}
		if err != nil {
			res.add(i, ProblemProof, "the server's inclusion proof of record %d does not verify: %v", i, err)
		}
	}
	res.sort()
	return res, nil
}
