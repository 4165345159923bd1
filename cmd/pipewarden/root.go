package main

import (
	"io"

	"github.com/spf13/cobra"
)

// globals are what every command may use; nothing is read from package state.
type globals struct {
	version string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "pipewarden",
		Short: "Continuous security monitoring for machine-learning pipelines",
		Long: `pipewarden watches every stage of an ML pipeline (data, features, training, model
artifacts, deployment, inference, access, dependencies, infrastructure), detects attacks and
unauthorized change, raises precise alerts, responds automatically and keeps tamper-evident
evidence.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetIn(g.stdin)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%s: %v (see '%s --help')", c.CommandPath(), err, c.CommandPath())
	})
	root.AddCommand(
		newVersionCmd(g),
		newServeCmd(g), newConfigCmd(g), newTokenCmd(g),
		newDepsCmd(g), newCheckCmd(g),
		newSignCmd(g), newVerifyCmd(g), newModelCmd(g),
		newScanCmd(g),
		newRulesCmd(g),
		newDataCmd(g),
		newGatewayCmd(g),
		newAuditCmd(g),
		newSilenceCmd(g), newAlertsCmd(g),
		newDemoCmd(g),
	)
	return root
}
