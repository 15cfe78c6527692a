package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ExitRestart is the gateway's exit status that asks its launcher to start
// the pending release.
const ExitRestart = 3

// maxTrialStarts is how often a release may be started in probation: a
// launcher stopped (or killed) in probation that many times rolls it back.
const maxTrialStarts = 2

// LauncherOptions configure a Launcher. Every duration has its default when
// zero.
type LauncherOptions struct {
	Dir      Dir
	Packaged string   // the packaged binary, run while no slot is current; default os.Executable()
	Args     []string // the gateway's arguments
	// StatusURL is the gateway's /status.json; probation needs "ready" and,
	// when the trial requires it, "uplink.online". Empty: probation only
	// requires the process to stay up for the settle time.
	StatusURL   string
	Probation   time.Duration // how long a new release has to become ready; default 120s
	Settle      time.Duration // how long it must then stay ready; default 10s
	StopTimeout time.Duration // SIGTERM to SIGKILL; default 30s
	Poll        time.Duration // readiness probe interval; default 500ms
	Logger      *slog.Logger
	Stdout      io.Writer // the gateway's; default os.Stdout
	Stderr      io.Writer // default os.Stderr
}

// Launcher runs the gateway's current release as a child process, starts a
// pending release in probation, commits it once ready, and rolls it back by
// itself when it exits, hangs, never becomes ready, or cannot reach Pulsar
// where the previous release could.
type Launcher struct {
	o   LauncherOptions
	log *slog.Logger
}

// NewLauncher returns a launcher; it starts nothing.
func NewLauncher(o LauncherOptions) (*Launcher, error) {
	if o.Packaged == "" {
		p, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Packaged = p
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Probation, 120*time.Second)
	def(&o.Settle, 10*time.Second)
	def(&o.StopTimeout, 30*time.Second)
	def(&o.Poll, 500*time.Millisecond)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	return &Launcher{o: o, log: o.Logger.With("component", "launcher")}, nil
}

// Run supervises the gateway until ctx ends (the child is then stopped
// with SIGTERM) or the child exits other than with ExitRestart, and
// returns the exit status to exit with. hup forwards SIGHUP.
func (l *Launcher) Run(ctx context.Context, hup <-chan struct{}) int {
	for {
		st, err := l.prepare()
		if err != nil {
			l.log.Error("firmware state unusable; running the packaged binary", "err", err)
			st = State{}
		}
		rel := st.Current
		if st.Trial != nil {
			rel = st.Trial.Release
			l.log.Info("starting a new release in probation", "version", rel.Version, "build", rel.Build,
				"attempt", st.Trial.Attempts, "window", l.o.Probation, "uplink_required", st.Trial.UplinkRequired)
		}
		code, fail := l.runChild(ctx, hup, l.o.Dir.SlotPath(rel.Slot, l.o.Packaged), st.Trial)
		switch {
		case fail != "":
			l.rollback(st.Trial, fail)
		case ctx.Err() != nil:
			return code
		case code == ExitRestart:
			l.log.Info("the gateway asked for a restart into a new release")
		default:
			return code
		}
	}
}

// prepare takes a pending release into probation and counts the start; a
// release started in probation too often is rolled back.
func (l *Launcher) prepare() (State, error) {
	pkg, err := FileSHA256(l.o.Packaged)
	if err != nil {
		return State{}, err
	}
	return l.o.Dir.Update(func(st *State) error {
		if st.Packaged != nil && !bytes.Equal(st.Packaged, pkg) && (st.Current.Slot != SlotPackaged || st.Trial != nil || st.Pending != nil) {
			l.log.Warn("the package replaced the gateway binary: running it instead of the release in the slots",
				"release", st.Current.Version)
			st.Current, st.Previous, st.Trial, st.Pending = Release{}, nil, nil, nil
			st.Last = Decision{State: StateIdle, At: time.Now().UTC(), Reason: "a package upgrade replaced the gateway binary; it runs instead of the over-the-air release"}
		}
		st.Packaged = pkg
		if st.Pending != nil {
			st.Trial, st.Pending = st.Pending, nil
			st.Trial.Attempts = 0
		}
		t := st.Trial
		if t == nil {
			return nil
		}
		t.Attempts++
		if t.Attempts > maxTrialStarts {
			l.log.Error("rolling back", "version", t.Version, "reason", "interrupted in probation")
			st.Trial = nil
			st.Tried = max(st.Tried, t.Version)
			st.Last = Decision{State: StateRolledBack, Version: t.Version, Build: t.Build, At: time.Now().UTC(),
				Reason: fmt.Sprintf("the gateway was stopped %d times while version %d was in probation", maxTrialStarts, t.Version)}
			return nil
		}
		t.Started = time.Now().UTC()
		st.Last = Decision{State: StateProbation, Version: t.Version, Build: t.Build, At: t.Started}
		return nil
	})
}

// runChild runs one binary until it exits or ctx ends. For a trial it
// returns fail, the reason to roll back, once the trial fails (the child is
// stopped then); it commits the trial once it passes.
func (l *Launcher) runChild(ctx context.Context, hup <-chan struct{}, bin string, trial *Trial) (code int, fail string) {
	cmd := exec.Command(bin, l.o.Args...)
	cmd.Stdout, cmd.Stderr = l.o.Stdout, l.o.Stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		if trial != nil {
			return 0, fmt.Sprintf("version %d does not start: %v", trial.Version, err)
		}
		l.log.Error("cannot start the gateway", "binary", bin, "err", err)
		return 1, ""
	}
	started := time.Now()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() int {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(l.o.StopTimeout):
			l.log.Error("the gateway did not stop in time; killing it", "timeout", l.o.StopTimeout)
			_ = cmd.Process.Kill()
			<-exited
		}
		return exitCode(cmd.ProcessState)
	}

	var tick <-chan time.Time
	var readySince time.Time
	why := "no readiness answer yet"
	if trial != nil {
		t := time.NewTicker(l.o.Poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return stop(), ""
		case <-hup:
			_ = cmd.Process.Signal(syscall.SIGHUP)
		case <-exited:
			code := exitCode(cmd.ProcessState)
			if trial != nil {
				return code, fmt.Sprintf("version %d exited in probation after %s: %s",
					trial.Version, time.Since(started).Round(time.Millisecond), cmd.ProcessState)
			}
			return code, ""
		case <-tick:
			ok, w := l.probe(ctx, trial.UplinkRequired)
			now := time.Now()
			switch {
			case ok && readySince.IsZero():
				readySince = now
			case !ok:
				readySince, why = time.Time{}, w
			}
			if ok && now.Sub(readySince) >= l.o.Settle {
				l.commit(trial)
				trial, tick = nil, nil
				continue
			}
			if now.Sub(started) > l.o.Probation && readySince.IsZero() {
				stop()
				return 0, fmt.Sprintf("version %d was not ready within %s: %s", trial.Version, l.o.Probation, why)
			}
		}
	}
}

// probe asks the gateway's status whether it is ready (and online, if
// required).
func (l *Launcher) probe(ctx context.Context, uplink bool) (bool, string) {
	if l.o.StatusURL == "" {
		return true, ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.o.StatusURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "status: " + err.Error()
	}
	defer resp.Body.Close()
	var s struct {
		Ready  bool `json:"ready"`
		Uplink struct {
			Online    bool   `json:"online"`
			LastError string `json:"last_error"`
		} `json:"uplink"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
		return false, "status: " + err.Error()
	}
	switch {
	case !s.Ready:
		return false, "the gateway is not ready"
	case uplink && !s.Uplink.Online:
		return false, "the uplink is not online (the previous release's was): " + s.Uplink.LastError
	}
	return true, ""
}

func (l *Launcher) commit(t *Trial) {
	l.log.Info("release committed", "version", t.Version, "build", t.Build)
	_, err := l.o.Dir.Update(func(st *State) error {
		prev := st.Current
		st.Previous, st.Current, st.Trial = &prev, t.Release, nil
		st.Tried = max(st.Tried, t.Version)
		st.Last = Decision{State: StateCommitted, Version: t.Version, Build: t.Build, At: time.Now().UTC()}
		return nil
	})
	if err != nil {
		l.log.Error("cannot record the commit; the release stays in probation", "err", err)
	}
}

func (l *Launcher) rollback(t *Trial, reason string) {
	l.log.Error("rolling back", "version", t.Version, "reason", reason)
	_, err := l.o.Dir.Update(func(st *State) error {
		st.Trial = nil
		st.Tried = max(st.Tried, t.Version)
		st.Last = Decision{State: StateRolledBack, Version: t.Version, Build: t.Build, Reason: reason, At: time.Now().UTC()}
		return nil
	})
	if err != nil {
		l.log.Error("cannot record the rollback", "err", err)
	}
}

// FileSHA256 is the SHA-256 of a file, read as a stream.
func FileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if c := ps.ExitCode(); c >= 0 {
		return c
	}
	return 1 // killed by a signal
}

// ErrNoFirmwareDir is returned where firmware needs its directory.
var ErrNoFirmwareDir = errors.New("firmware: no firmware directory (the gateway runs without its launcher)")
