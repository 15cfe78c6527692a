package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/firmware"
)

const launchUsage = `usage: gateway launch [-config FILE] [-firmware-dir DIR] [-probation DURATION] [-settle DURATION] [-stop-timeout DURATION]

Runs the gateway (gateway run) from the current firmware slot under DIR, or
this binary while no release has been committed, and supervises it: a
release the gateway installed starts in probation and is committed once the
gateway is ready (and its uplink online, when the previous release's was)
for the settle time; it is rolled back to the previous release by itself
when it exits, is not ready within the probation window, or is stopped twice
while in probation. SIGTERM and SIGINT stop the gateway; SIGHUP is passed
on. The exit status is the gateway's (2: invalid config).

options:
`

// launch is the firmware launcher: the process systemd runs.
func launch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway launch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/edgegw/gateway.yaml", "config `FILE`")
	dir := fs.String("firmware-dir", "/var/lib/edgegw/firmware", "firmware `DIR`: slots, state file, downloads")
	probation := fs.Duration("probation", 120*time.Second, "how long (`DURATION`) a new release has to become ready")
	settle := fs.Duration("settle", 10*time.Second, "how long (`DURATION`) a new release must then stay ready to be committed")
	stopTimeout := fs.Duration("stop-timeout", 20*time.Second, "the gateway's stop timeout (`DURATION`); the launcher kills it 10s later")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, launchUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintln(stderr, "run 'gateway launch -h' for the options")
		return exitUsage
	}
	if rest := fs.Args(); len(rest) > 0 {
		fmt.Fprintf(stderr, "gateway launch: unexpected argument %q\n", rest[0])
		return exitUsage
	}
	statusURL := ""
	logCfg := config.Log{}
	// An invalid config is the gateway's to report (it exits 2, and so
	// does the launcher); the launcher only needs the status address.
	if cfg, err := config.Load(*cfgPath); err == nil {
		statusURL, logCfg = statusURLOf(cfg.HTTP.Listen), cfg.Log
	}
	log := newLogger(logCfg, stderr)
	if statusURL == "" {
		log.Warn("http.listen is off: probation only checks that a new release stays up", "component", "launcher")
	}
	l, err := firmware.NewLauncher(firmware.LauncherOptions{
		Dir:       firmware.Dir(*dir),
		Args:      []string{"run", "-config", *cfgPath, "-firmware-dir", *dir, "-stop-timeout", stopTimeout.String()},
		StatusURL: statusURL, Probation: *probation, Settle: *settle, StopTimeout: *stopTimeout + 10*time.Second,
		Logger: log, Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "gateway launch: %v\n", err)
		return exitFailure
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	hup := make(chan struct{}, 1)
	go func() {
		for s := range sigs {
			if s != syscall.SIGHUP {
				cancel()
				return
			}
			select {
			case hup <- struct{}{}:
			default:
			}
		}
	}()
	return l.Run(ctx, hup)
}

// statusURLOf is the /status.json URL of an http.listen address, on
// loopback when it listens on every address.
func statusURLOf(listen string) string {
	if listen == "" || listen == "off" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/status.json"
}
