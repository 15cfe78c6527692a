package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/uplink"
)

// ota is the gateway's side of firmware over the air (on when the launcher
// gave it a firmware directory and fleet config is on): it follows the
// firmware manifest topic, checks the release meant for this gateway,
// downloads its payload (a delta when one fits the running binary),
// installs it in the other slot and asks the launcher to restart into it.
// The launcher runs probation and rollback; ota reports where things stand.
type ota struct {
	g        *Gateway
	local    *config.Config // the local file: ID, groups, trusted keys
	dir      firmware.Dir
	platform string
	offers   chan map[string]uplink.KeyedMessage // the latest manifests; capacity 1, replaced
	log      *slog.Logger

	mu      sync.Mutex
	cur     fleet.Firmware    // the latest in-memory decision (downloading, pending, refused)
	refused map[[32]byte]bool // digests of manifests refused, not logged twice
}

func newOTA(g *Gateway, dir string, local *config.Config) *ota {
	platform := g.build.Target // cmd/gateway: GOOS/GOARCH[/vN], as manifests name platforms
	if platform == "" {
		platform = firmware.PlatformOf(runtime.GOOS, runtime.GOARCH, "")
	}
	return &ota{g: g, local: local, dir: firmware.Dir(dir), platform: platform,
		offers: make(chan map[string]uplink.KeyedMessage, 1), refused: map[[32]byte]bool{},
		log: g.log.With("component", "firmware")}
}

// keys are the manifest topic keys this gateway reads.
func (o *ota) keys() []string {
	var out []string
	for _, k := range fleet.Keys(o.local.Gateway.ID, o.local.Gateway.Groups) {
		out = append(out, firmware.ManifestKey(k, o.platform))
	}
	return out
}

// offer hands the latest manifests to run; it never blocks.
func (o *ota) offer(latest map[string]uplink.KeyedMessage) {
	select {
	case <-o.offers:
	default:
	}
	o.offers <- latest
}

// errUnderWay: the launcher has a release pending or in probation.
var errUnderWay = errors.New("a release is pending or in probation")

// run evaluates offers until ctx ends; a download that fails (not refused)
// is tried again after a backoff.
func (o *ota) run(ctx context.Context, ctl *uplink.Control) {
	bo := backoff.Backoff{Min: 2 * time.Second, Max: time.Minute, Jitter: [2]float64{0.5, 1}}
	var latest map[string]uplink.KeyedMessage
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case latest = <-o.offers:
		case <-retry:
		}
		retry = nil
		err := o.evaluate(ctx, ctl, latest)
		if errors.Is(err, errUnderWay) {
			// Look again once the launcher has decided: a release
			// published during probation is taken after the commit.
			retry = time.After(5 * time.Second)
			continue
		}
		if err != nil && ctx.Err() == nil {
			wait := bo.Next()
			o.log.Warn("firmware download failed; retrying", "err", err, "in", wait)
			retry = time.After(wait)
			continue
		}
		bo.Reset()
	}
}

// evaluate picks the release for this gateway among latest and, if it is
// new and passes the checks, downloads and installs it.
func (o *ota) evaluate(ctx context.Context, ctl *uplink.Control, latest map[string]uplink.KeyedMessage) error {
	st, err := o.dir.Load()
	if err != nil {
		return err
	}
	if st.Pending != nil || st.Trial != nil {
		return errUnderWay
	}
	key, msg, ok := o.pick(latest)
	if !ok {
		return nil
	}
	m, err := firmware.Unmarshal(msg.Payload)
	if err != nil {
		o.refuse(msg.Payload, nil, &firmware.RefuseError{Reason: firmware.ReasonMalformed, Detail: err.Error()})
		return nil
	}
	if m.Version == st.Current.Version || m.Version == st.Last.Version {
		return nil // running it, or the launcher decided about it
	}
	keys, err := fleet.LoadTrustedKeys(o.local.Gateway.TrustedKeysFile)
	if err != nil {
		keys = nil
	}
	gw := firmware.Gateway{ID: o.local.Gateway.ID, Groups: o.local.Gateway.Groups, Platform: o.platform,
		Version: max(st.Current.Version, st.Tried), StoreFormat: buffer.FormatVersion, Keys: keys}
	if err := firmware.Check(key, m, gw); err != nil {
		o.refuse(msg.Payload, m, err)
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sum, err := firmware.FileSHA256(self)
	if err != nil {
		return err
	}
	p := &m.Payloads[0]
	for i := range m.Payloads[1:] {
		if d := &m.Payloads[1+i]; bytes.Equal(d.BaseSHA256, sum) {
			p = d
		}
	}
	if err := o.download(ctx, ctl, m, p); err != nil {
		var re *firmware.RefuseError
		if errors.As(err, &re) {
			_ = o.dir.RemoveDownloads()
			re.Detail = m.String() + ": " + re.Detail
			o.refuse(msg.Payload, m, re)
			return nil
		}
		return err
	}
	var base []byte // the running binary, in memory only for a delta
	if p.Encoding == firmware.EncodingDelta {
		if base, err = os.ReadFile(self); err != nil {
			return err
		}
	}
	healthy, _ := fleetRuntime{o.g}.UplinkHealthy()
	dl, err := o.dir.OpenDownload(p)
	if err != nil {
		return err
	}
	if err := o.dir.Install(m, p, dl.Path(), base, healthy); err != nil {
		var re *firmware.RefuseError
		if errors.As(err, &re) {
			_ = dl.Remove()
			o.refuse(msg.Payload, m, err)
			return nil
		}
		dl.Close()
		return err
	}
	_ = dl.Remove()
	o.set(fleet.Firmware{State: firmware.StatePending, Version: m.Version, Build: m.Build, Bytes: p.Size, Delta: p.Encoding == firmware.EncodingDelta})
	o.log.Info("release installed; restarting into it", "release", m.String(), "payload_bytes", p.Size, "encoding", p.Encoding,
		"uplink_required", healthy)
	if o.g.opts.Restart != nil {
		o.g.opts.Restart()
	}
	return nil
}

// pick chooses the manifest for this gateway: its own key wins, else the
// highest version among its groups'.
func (o *ota) pick(latest map[string]uplink.KeyedMessage) (string, uplink.KeyedMessage, bool) {
	own := firmware.ManifestKey(fleet.GatewayTarget(o.local.Gateway.ID).Key(), o.platform)
	if m, ok := latest[own]; ok {
		return own, m, true
	}
	var best uint64
	var key string
	var msg uplink.KeyedMessage
	found := false
	for _, g := range o.local.Gateway.Groups {
		k := firmware.ManifestKey(fleet.GroupTarget(g).Key(), o.platform)
		m, ok := latest[k]
		if !ok {
			continue
		}
		var v struct { // checked in full once picked; an undecodable one counts as 0, to be reported
			Version uint64 `json:"version"`
		}
		_ = json.Unmarshal(m.Payload, &v)
		if !found || v.Version > best {
			key, msg, best, found = k, m, v.Version, true
		}
	}
	return key, msg, found
}

// download reads payload p's parts from the images topic into the
// firmware directory, resuming after the last part on disk.
func (o *ota) download(ctx context.Context, ctl *uplink.Control, m *firmware.Manifest, p *firmware.Payload) error {
	dl, err := o.dir.OpenDownload(p)
	if err != nil {
		return err
	}
	defer dl.Close()
	progress := func() {
		o.set(fleet.Firmware{State: firmware.StateDownloading, Version: m.Version, Build: m.Build, Percent: dl.Percent(),
			Bytes: dl.Bytes(), Delta: p.Encoding == firmware.EncodingDelta})
	}
	progress()
	if dl.Done() {
		return nil
	}
	if dl.Parts() > 0 {
		o.log.Info("resuming a download", "release", m.String(), "parts", dl.Parts(), "of", len(p.Parts))
	}
	prefix := p.ID() + "/"
	topic := ctl.Topic(firmware.ImageTopic)
	start := dl.MsgID()
	for attempt := 0; ; attempt++ {
		err = ctl.ReadFrom(ctx, topic, start, func(msg uplink.KeyedMessage, id []byte) (bool, error) {
			rest, ok := strings.CutPrefix(msg.Key, prefix)
			if !ok {
				return false, nil
			}
			i, err := strconv.Atoi(rest)
			if err != nil {
				return false, nil
			}
			if err := dl.Add(i, msg.Payload, id); err != nil {
				return false, err
			}
			progress()
			return dl.Done(), nil
		})
		if errors.Is(err, firmware.ErrPartMissing) && start != nil && attempt == 0 {
			start = nil // the parts before were not where the record says: read the topic from its start
			continue
		}
		return err
	}
}

// refuse reports a refused release (once per message).
func (o *ota) refuse(raw []byte, m *firmware.Manifest, err error) {
	re := firmware.Refusal(err)
	d := sha256.Sum256(raw)
	o.mu.Lock()
	seen := o.refused[d]
	o.refused[d] = true
	o.mu.Unlock()
	f := fleet.Firmware{State: firmware.StateRefused, Reason: re.Error()}
	if m != nil {
		f.Version, f.Build = m.Version, m.Build
	}
	if !seen {
		o.log.Error("firmware release refused", "reason", re.Reason, "detail", re.Detail)
	}
	o.set(f)
}

func (o *ota) set(f fleet.Firmware) {
	f.At = o.g.now().UTC()
	o.mu.Lock()
	prev := o.cur
	o.cur = f
	o.mu.Unlock()
	// A heartbeat at once on every change but download progress.
	if prev.State != f.State || prev.Version != f.Version {
		o.g.kickHeartbeat()
	}
}

// status is the heartbeat's firmware part: the launcher's latest decision
// (state file) or the gateway's own, whichever is newer.
func (o *ota) status() *fleet.Firmware {
	st, err := o.dir.Load()
	o.mu.Lock()
	f := o.cur
	o.mu.Unlock()
	if err != nil {
		f = fleet.Firmware{State: firmware.StateIdle, Reason: "firmware state unreadable: " + err.Error()}
	}
	switch {
	case st.Trial != nil:
		f = fleet.Firmware{State: firmware.StateProbation, Version: st.Trial.Version, Build: st.Trial.Build, At: st.Trial.Started}
	case st.Pending != nil:
		if f.State != firmware.StatePending {
			f = fleet.Firmware{State: firmware.StatePending, Version: st.Pending.Version, Build: st.Pending.Build}
		}
	case f.State == "" || st.Last.At.After(f.At):
		f = fleet.Firmware{State: st.Last.State, Version: st.Last.Version, Build: st.Last.Build, Reason: st.Last.Reason, At: st.Last.At}
		if f.State == "" || f.State == firmware.StateProbation {
			f.State = firmware.StateIdle
		}
	}
	f.Platform, f.Running, f.Groups = o.platform, st.Current.Version, o.local.Gateway.Groups
	return &f
}

// String is for logs.
func (o *ota) String() string { return fmt.Sprintf("firmware %s in %s", o.platform, o.dir) }
