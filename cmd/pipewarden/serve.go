package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
)

// daemonFlags are the flags of commands that read the daemon's configuration.
type daemonFlags struct {
	config   string
	dataDir  string
	listen   string
	logLevel string
	logFmt   string
}

func (d *daemonFlags) add(cmd *cobra.Command, withListen bool) {
	cmd.Flags().StringVar(&d.config, "config", "", "configuration file (YAML); see 'pipewarden config default'")
	cmd.Flags().StringVar(&d.dataDir, "data", "", "data directory (default ./pipewarden-data, or data_dir in the config)")
	if withListen {
		cmd.Flags().StringVar(&d.listen, "listen", "", "listen address (default 127.0.0.1:7700)")
		cmd.Flags().StringVar(&d.logLevel, "log-level", "", "log level: debug, info, warn, error")
		cmd.Flags().StringVar(&d.logFmt, "log-format", "", "log format: auto, text, json")
	}
}

// load reads the config file (if any) and applies flag overrides.
func (d *daemonFlags) load() (*config.Config, error) {
	cfg := config.Default()
	if d.config != "" {
		c, err := config.LoadFile(d.config)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		cfg = c
	}
	if d.dataDir != "" {
		cfg.DataDir = d.dataDir
	}
	if d.listen != "" {
		cfg.Listen = d.listen
	}
	if d.logLevel != "" {
		cfg.Log.Level = d.logLevel
	}
	if d.logFmt != "" {
		cfg.Log.Format = d.logFmt
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageErr("config: %v", err)
	}
	return cfg, nil
}

func newServeCmd(g *globals) *cobra.Command {
	var d daemonFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: ingest events, detect, alert, serve the API",
		Long: `Run the pipewarden daemon. With no configuration it stores everything in
./pipewarden-data (SQLite), listens on 127.0.0.1:7700, and on first start creates an
admin token in ./pipewarden-data/admin.token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := d.load()
			if err != nil {
				return err
			}
			// The daemon's live heap is small (tens of MB) and its garbage comes from every
			// event: collecting half as often costs that much memory again and gives the
			// CPU back to ingestion. GOGC, when set, wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(200)
			}
			log, err := app.NewLogger(g.stderr, cfg.Log.Level, cfg.Log.Format, isTerminal(g.stderr))
			if err != nil {
				return usageErr("%v", err)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			go func() {
				for range hup {
					reload <- struct{}{}
				}
			}()
			return app.Run(cmd.Context(), app.Options{Config: cfg, Logger: log, Out: g.stdout, Version: g.version, Reload: reload})
		},
	}
	d.add(cmd, true)
	return cmd
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
