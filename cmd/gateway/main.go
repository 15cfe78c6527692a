// Command gateway is the edge gateway daemon.
//
//	gateway [run] [-config FILE]  run
//	gateway launch [-config FILE] run under the firmware launcher (A/B slots, probation, rollback)
//	gateway validate FILE...      check config files; print every error with field and line
//	gateway version               print version, commit, Go version and target
//	gateway buffer CMD FILE       field tool for the buffer file (stats, gaps, quarantine, check, compact)
//	gateway help                  usage, subcommands and exit codes
//
// Exit codes: 0 success, 1 failure, 2 usage error or invalid config (see
// usage).
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
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgegw/gateway/edge"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/logging"
	"github.com/edgegw/gateway/units"

	_ "github.com/edgegw/gateway/drivers/all"
)

// Set by the linker (-X main.version=... -X main.commit=...).
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes, as the usage text documents them.
const (
	exitOK      = 0
	exitFailure = 1 // the gateway failed or did not stop in time; validate: a file is invalid; buffer: the command failed
	exitUsage   = 2 // bad command line, or an invalid config at start: restarting cannot help
)

const usageHead = `usage: gateway [run] [-config FILE] [-stop-timeout DURATION] [-firmware-dir DIR]
       gateway launch [-config FILE] [-firmware-dir DIR] [-probation DURATION] ...
       gateway validate FILE...
       gateway buffer COMMAND FILE
       gateway rules test -config FILE -events FILE
       gateway version
       gateway help

commands:
  run          run the gateway (the default when no command is given)
  launch       run the gateway under the firmware launcher, as systemd does:
               it runs the current firmware slot and rolls a new release back
               by itself when it fails probation (gateway launch -h)
  validate     check config files as the start does; every error as FILE:LINE: FIELD: REASON
  buffer       field tool for a stopped gateway's buffer file (gateway buffer -h)
  rules        replay recorded events through the config's rules (gateway rules -h)
  version      print version, commit, Go version and target
  help         print this text (also -h, --help)

options of run:
`

const usageTail = `
exit codes:
  0  success; run: stopped by SIGTERM or SIGINT
  1  failure; run: the gateway failed, or did not stop within -stop-timeout;
     validate: a file is invalid; buffer: the command failed
  2  usage error (unknown command, argument or flag); run: the config is
     invalid, so a restart cannot help (the systemd unit does not restart on
     it: RestartPreventExitStatus=2)
  3  run with -firmware-dir: a new firmware release is installed; the
     launcher starts it (the launcher itself never exits 3)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// startDaemon runs the gateway on the config file until a signal stops
// it; a variable so that the tests of the command line can stub it.
var startDaemon = daemon

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/edgegw/gateway.yaml", "config `FILE`")
	stopTimeout := fs.Duration("stop-timeout", 20*time.Second, "how long (`DURATION`) a stop may take before the process exits anyway")
	firmwareDir := fs.String("firmware-dir", "", "firmware `DIR` (slots and state); set by gateway launch, which turns over-the-air firmware on")
	// The flag package prints its error; run prints the usage (to stdout
	// when asked for, else to stderr).
	fs.Usage = func() {}
	usage := func(w io.Writer) {
		fmt.Fprint(w, usageHead)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprint(w, usageTail)
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "gateway: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'gateway help' for the commands and options")
		return exitUsage
	}

	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			if len(args) > 1 {
				return bad("help takes no arguments, got %q", args[1])
			}
			usage(stdout)
			return exitOK
		case "version":
			if len(args) > 1 {
				return bad("version takes no arguments, got %q", args[1])
			}
			fmt.Fprintf(stdout, "gateway %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, goarch())
			return exitOK
		case "validate":
			return validate(args[1:], stdout, stderr)
		case "buffer":
			return bufferCommand(args[1:], stdout, stderr)
		case "rules":
			return rulesCommand(args[1:], stdout, stderr)
		case "launch":
			return launch(args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		default:
			if !strings.HasPrefix(args[0], "-") {
				return bad("unknown command %q", args[0])
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		// The flag package printed the error.
		fmt.Fprintln(stderr, "run 'gateway help' for the commands and options")
		return exitUsage
	}
	if rest := fs.Args(); len(rest) > 0 {
		return bad("unexpected argument %q (run takes no arguments; the config file is -config FILE)", rest[0])
	}
	return startDaemon(*cfgPath, *stopTimeout, *firmwareDir, stderr)
}

// daemon loads the config and runs the gateway until SIGTERM or SIGINT;
// SIGHUP reloads the config file.
func daemon(cfgPath string, stopTimeout time.Duration, firmwareDir string, stderr io.Writer) int {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid config:\n%v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var restart atomic.Bool // a new firmware release is installed: exit firmware.ExitRestart
	g := edge.New(cfg, edge.Options{Logger: log, Build: edge.Build{Version: version, Commit: commit, GoVersion: runtime.Version(), Target: runtime.GOOS + "/" + goarch()},
		FirmwareDir: firmwareDir, Restart: func() { restart.Store(true); cancel() }})

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("gateway failed", "err", err)
				return exitFailure
			}
			if restart.Load() {
				log.Info("stopped to restart into the new firmware release")
				return firmware.ExitRestart
			}
			return exitOK
		case s := <-sigs:
			if s == syscall.SIGHUP {
				nc, err := config.Load(cfgPath)
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
					return exitFailure
				}
				return exitOK
			case <-time.After(stopTimeout):
				log.Error("stop took too long; exiting", "timeout", stopTimeout)
				return exitFailure
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
		return exitUsage
	}
	if len(files) == 1 && (files[0] == "-h" || files[0] == "--help" || files[0] == "-help") {
		fmt.Fprintln(stdout, "usage: gateway validate FILE...\ncheck config files as the start does; exit 0 when all are valid, 1 when one is not, 2 on usage errors")
		return exitOK
	}
	rc := 0
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			printConfigError(f, err, stderr)
			rc = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	return rc
}

// printConfigError prints a config error of file f: each field error as
// FILE:LINE: FIELD: REASON.
func printConfigError(f string, err error, stderr io.Writer) {
	var es units.Errors
	if !errors.As(err, &es) {
		fmt.Fprintf(stderr, "%v\n", err)
		return
	}
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
