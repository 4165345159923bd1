package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or print configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Check configuration files; exit 0 when valid, 2 otherwise",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, f := range args {
				if _, err := config.LoadFile(f); err != nil {
					fmt.Fprintf(g.stderr, "%v\n", err)
					bad++
					continue
				}
				fmt.Fprintf(g.stdout, "%s: ok\n", f)
			}
			if bad > 0 {
				return &exitError{code: 2}
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "default",
		Short: "Print the default configuration, with comments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := g.stdout.Write(config.DefaultYAML())
			return err
		},
	})
	return cmd
}
