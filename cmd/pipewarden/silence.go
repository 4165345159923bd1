package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/alert"
)

// alertAPI is a small client of the daemon's alerting API for the silence and alerts commands.
type alertAPI struct {
	server, token string
}

func (a *alertAPI) add(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&a.server, "server", "http://127.0.0.1:7700", "pipewarden daemon URL")
	cmd.PersistentFlags().StringVar(&a.token, "token", "", "API token (default $PIPEWARDEN_TOKEN)")
}

// call sends a JSON request and decodes the JSON answer into out; failures name the server.
func (a *alertAPI) call(ctx context.Context, method, path string, in, out any) error {
	u, err := url.Parse(a.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--server %q: want a URL such as http://127.0.0.1:7700", a.server)
	}
	tok := a.token
	if tok == "" {
		tok = os.Getenv("PIPEWARDEN_TOKEN")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.server, "/")+path, body)
	if err != nil {
		return usageErr("%s: %v", a.server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return usageErr("%s: %v", a.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return usageErr("%s: read answer: %v", a.server, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (pass a responder token with --token or PIPEWARDEN_TOKEN)"
		}
		return usageErr("%s %s: %d %s%s", method, a.server+path, resp.StatusCode, e.Error, hint)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return usageErr("%s: answer is not the expected JSON: %v", a.server, err)
		}
	}
	return nil
}

func newSilenceCmd(g *globals) *cobra.Command {
	var api alertAPI
	cmd := &cobra.Command{
		Use:   "silence",
		Short: "Add, list and expire alert silences on a running daemon",
		Long: `Silences mute alerts whose labels match every matcher for a while; muted findings are
still counted and the alerts stay visible. Matchers use Alertmanager's syntax:
name="value", name!="value", name=~"regex", name!~"regex". Labels are rule, severity, stage,
subject_kind, subject and the finding's own labels.`,
	}
	api.add(cmd)
	var comment, duration, start, end string
	add := &cobra.Command{
		Use:   "add MATCHER... --comment TEXT [--duration 2h | --end TIME]",
		Short: "Create a silence and print its id",
		Example: `  pipewarden silence add 'rule="deploy_without_approval"' 'subject="fraud-api"' \
      --duration 2h --comment "planned rollout, CHG-1234"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(comment) == "" {
				return usageErr("silence add: --comment is required: say why the alerts are muted")
			}
			if _, err := alert.ParseMatchers(args); err != nil {
				return usageErr("silence add: %v", err)
			}
			req := alert.SilenceRequest{Matchers: args, Comment: comment, Duration: duration}
			var err error
			if req.StartsAt, err = parseTime("--start", start); err != nil {
				return err
			}
			if req.EndsAt, err = parseTime("--end", end); err != nil {
				return err
			}
			if duration != "" && end != "" {
				return usageErr("silence add: give --duration or --end, not both")
			}
			var s alert.SilenceView
			if err := api.call(cmd.Context(), http.MethodPost, "/v1/silences", req, &s); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, s.ID)
			fmt.Fprintf(g.stderr, "silence %s is %s until %s\n", s.ID, s.State, s.EndsAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	add.Flags().StringVar(&comment, "comment", "", "why the alerts are muted (required)")
	add.Flags().StringVar(&duration, "duration", "", "how long, e.g. 2h (default: the daemon's silences.default_duration)")
	add.Flags().StringVar(&start, "start", "", "start time, RFC 3339 (default now)")
	add.Flags().StringVar(&end, "end", "", "end time, RFC 3339")

	var state, format string
	list := &cobra.Command{
		Use:   "list [--state active|pending|expired] [--format text|json]",
		Short: "List silences",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch state {
			case "", "active", "pending", "expired":
			default:
				return usageErr("--state: %q is not active, pending or expired", state)
			}
			if format != "text" && format != "json" {
				return usageErr("--format: %q is not text or json", format)
			}
			var out struct {
				Items []alert.SilenceView `json:"items"`
			}
			path := "/v1/silences"
			if state != "" {
				path += "?state=" + state
			}
			if err := api.call(cmd.Context(), http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out.Items)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tENDS\tBY\tMATCHERS\tCOMMENT")
			for _, s := range out.Items {
				var ms []string
				for _, m := range s.Matchers {
					c, err := alert.CompileMatcher(m)
					if err != nil {
						continue
					}
					ms = append(ms, c.String())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.EndsAt.Local().Format(time.RFC3339), s.CreatedBy, strings.Join(ms, ","), s.Comment)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only silences in this state")
	list.Flags().StringVar(&format, "format", "text", "text or json")

	expire := &cobra.Command{
		Use:   "expire ID...",
		Short: "End silences now",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			for _, id := range ids {
				if err := api.call(cmd.Context(), http.MethodDelete, "/v1/silences/"+url.PathEscape(id), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "expired %s\n", id)
			}
			return nil
		},
	}
	cmd.AddCommand(add, list, expire)
	return cmd
}

func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, usageErr("%s %q: want an RFC 3339 time such as 2026-11-26T18:00:00Z", flag, v)
	}
	return t, nil
}
