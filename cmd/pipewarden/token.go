package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/store"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens",
	}
	var d daemonFlags
	var role, name string
	var hashOnly bool
	create := &cobra.Command{
		Use:   "create --role ROLE",
		Short: "Create an API token (stored hashed) and print it once",
		Long: `Create an API token with a role: ingest (POST events), viewer (read),
responder (read and act on alerts) or admin. The token is stored as its SHA-256 in the
data directory's store and printed once on standard output. With --hash-only nothing is
stored: the token and the sha256 line to paste into the config file's auth.tokens are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !store.ValidRole(role) {
				return usageErr("--role: %q is not ingest, viewer, responder or admin", role)
			}
			if name == "" {
				name = role
			}
			secret, hash := app.NewToken()
			if hashOnly {
				fmt.Fprintf(g.stdout, "token: %s\nsha256: %s\n", secret, hash)
				return nil
			}
			cfg, err := d.load()
			if err != nil {
				return err
			}
			st, err := app.OpenStore(cmd.Context(), cfg, nil)
			if err != nil {
				return usageErr("%v", err)
			}
			defer st.Close()
			if err := st.CreateToken(cmd.Context(), store.Token{Name: name, Role: role, Hash: hash}); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, secret)
			fmt.Fprintf(g.stderr, "created %s token %q in the %s store; it is shown only once\n", role, name, cfg.Store.Driver)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "ingest, viewer, responder or admin (required)")
	create.Flags().StringVar(&name, "name", "", "a name to recognise the token by (default: the role)")
	create.Flags().BoolVar(&hashOnly, "hash-only", false, "print the token and its sha256 for the config file; store nothing")
	_ = create.MarkFlagRequired("role")
	d.add(create, false)
	cmd.AddCommand(create)
	return cmd
}
