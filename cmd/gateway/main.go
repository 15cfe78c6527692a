// Command gateway is the edge gateway daemon.
//
//	gateway -config FILE          run
//	gateway validate FILE...      check config files; print every error with field and line
//	gateway version               print version, commit, Go version and target
//	gateway buffer CMD FILE       field tool for the buffer file (stats, gaps, quarantine, check, compact)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/edgegw/gateway/edge"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/logging"

	_ "github.com/edgegw/gateway/drivers/all"
)

// Set by the linker (-X main.version=... -X main.commit=...).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintf(stdout, "gateway %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, goarch())
			return 0
		case "validate":
			return validate(args[1:], stdout, stderr)
		case "buffer":
			return bufferCommand(args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		}
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/edgegw/gateway.yaml", "config file")
	stopTimeout := fs.Duration("stop-timeout", 20*time.Second, "how long a stop may take before the process exits anyway")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid config:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	g := edge.New(cfg, edge.Options{Logger: log, Build: edge.Build{Version: version, Commit: commit, GoVersion: runtime.Version(), Target: runtime.GOOS + "/" + goarch()}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("gateway failed", "err", err)
				return 1
			}
			return 0
		case s := <-sigs:
			if s == syscall.SIGHUP {
				nc, err := config.Load(*cfgPath)
				if err != nil {
					log.Error("reload refused: invalid config", "err", err)
					continue
				}
				if err := g.ReloadLocal(ctx, nc); err != nil {
					log.Error("reload failed", "err", err)
				}
				continue
			}
			log.Info("stopping", "signal", s.String())
			cancel()
			select {
			case err := <-done:
				if err != nil {
					log.Error("gateway failed", "err", err)
					return 1
				}
				return 0
			case <-time.After(*stopTimeout):
				log.Error("stop took too long; exiting", "timeout", *stopTimeout)
				return 1
			}
		}
	}
}

// validate checks config files as the gateway does at start (config.Load:
// the size bound, the strict decode and Config.Validate, which holds every
// check the start makes before its first I/O), printing each error as
// FILE:LINE: PATH: MESSAGE.
func validate(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: gateway validate FILE...")
		return 2
	}
	rc := 0
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			var es config.Errors
			if errors.As(err, &es) {
				for _, e := range es {
					loc := f
					if e.Line > 0 {
						loc = fmt.Sprintf("%s:%d", f, e.Line)
					}
					if e.Path != "" {
						loc += ": " + e.Path
					}
					fmt.Fprintf(stderr, "%s: %s\n", loc, e.Msg)
				}
			} else {
				fmt.Fprintf(stderr, "%v\n", err)
			}
			rc = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	return rc
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	log, err := logging.New(w, logging.Options{Level: c.Level, Format: c.Format})
	if err != nil {
		// Config.Validate refuses what logging.New refuses, so only a config
		// built in code gets here: fall back rather than refuse to start.
		log, _ = logging.New(w, logging.Options{})
		log.Warn("log settings ignored; logging text at info level", "component", "main", "err", err)
	}
	return log
}

func goarch() string {
	if runtime.GOARCH == "arm" {
		if v := armVersion(); v != "" {
			return "arm/v" + v
		}
	}
	return runtime.GOARCH
}
