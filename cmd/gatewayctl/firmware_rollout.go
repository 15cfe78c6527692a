package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

// waveResult is how one wave of a rollout ended.
type waveResult struct {
	Group     string   `json:"group"`
	Gateways  int      `json:"gateways"`
	Committed []string `json:"committed"`
	Failed    []string `json:"failed"` // gateway: state: reason
	Pending   []string `json:"pending"`
}

// wave pushes m to group and follows the heartbeats of the gateways in it
// (those whose firmware section lists the group and the platform) until
// every one committed the version, or failures exceed maxFail (a share;
// 0: the first failure halts), or timeout.
func wave(ctx context.Context, ctl *uplink.Control, statusTopic string, m *firmware.Manifest, key *fleet.PrivateKey,
	group string, maxFail float64, timeout, poll time.Duration, log io.Writer) (waveResult, error) {
	res := waveResult{Group: group}
	rows, err := firmwareRows(ctx, ctl, statusTopic)
	if err != nil {
		return res, err
	}
	members := map[string]bool{}
	for _, r := range rows {
		if r.inGroup(group) && r.Firmware.Platform == m.Platform {
			members[r.Gateway] = true
		}
	}
	if len(members) == 0 {
		return res, fmt.Errorf("no gateway of group %s on %s reports firmware on the status topic", group, m.Platform)
	}
	res.Gateways = len(members)
	if err := publishManifest(ctx, ctl, m, key, fleet.GroupTarget(group).Key()); err != nil {
		return res, err
	}
	fmt.Fprintf(log, "wave %s: version %d pushed to %d gateways\n", group, m.Version, len(members))
	deadline := time.Now().Add(timeout)
	for {
		rows, err := firmwareRows(ctx, ctl, statusTopic)
		if err != nil {
			return res, err
		}
		res.Committed, res.Failed, res.Pending = nil, nil, nil
		for _, r := range rows {
			if !members[r.Gateway] {
				continue
			}
			f := r.Firmware
			switch {
			case f == nil:
				res.Failed = append(res.Failed, r.Gateway+": firmware off")
			case f.Running >= m.Version:
				res.Committed = append(res.Committed, r.Gateway)
			case f.Version == m.Version && (f.State == firmware.StateRolledBack || f.State == firmware.StateRefused):
				res.Failed = append(res.Failed, r.Gateway+": "+f.State+": "+f.Reason)
			default:
				res.Pending = append(res.Pending, r.Gateway)
			}
		}
		failRate := float64(len(res.Failed)) / float64(len(members))
		switch {
		case len(res.Failed) > 0 && failRate > maxFail:
			return res, fmt.Errorf("wave %s halted: %d of %d gateways failed version %d: %v", group, len(res.Failed), len(members), m.Version, res.Failed)
		case len(res.Pending) == 0:
			fmt.Fprintf(log, "wave %s: %d committed, %d failed\n", group, len(res.Committed), len(res.Failed))
			return res, nil
		case time.Now().After(deadline):
			return res, fmt.Errorf("wave %s: %d of %d gateways had not committed version %d within %s: %v", group, len(res.Pending), len(members), m.Version, timeout, res.Pending)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func newFirmwareRolloutCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	r := &releaseFlags{}
	var canary, rest string
	var maxFail float64
	var waveTimeout, poll time.Duration
	c := &cobra.Command{
		Use:   "rollout --canary LABEL --group LABEL (--dir DIST/TARGET | --image FILE) --key FILE [--base FILE]",
		Short: "Push a release to a canary group, wait for it to commit there, then to the rest; halt on the first rollback or a failure rate",
		Long: `Push a release in two waves. The image's parts are published once; the
manifest goes to the canary group first. The rollout follows the heartbeats
of the gateways that report the group: the first rollback or refusal in the
canary group halts it (nothing is pushed to the rest). Once every canary
gateway runs the release, the manifest (same version) goes to the second
group, where the rollout halts when the share of failed gateways exceeds
--max-failure-rate. Gateways that already run the release are not touched
again. Exit status 1 when a wave halts or times out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if canary == "" || rest == "" {
				return errors.New("--canary LABEL and --group LABEL are required")
			}
			m, datas, key, err := r.release(fleet.GroupTarget(canary).Key())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ctl, err := p.control(a)
			if err != nil {
				return err
			}
			defer ctl.Close()
			pctx, cancel := context.WithTimeout(ctx, p.timeout)
			err = publishImage(pctx, ctl, m, datas)
			cancel()
			if err != nil {
				return err
			}
			out := cmd.ErrOrStderr()
			var results []waveResult
			for i, w := range []struct {
				group string
				fail  float64
			}{{canary, 0}, {rest, maxFail}} {
				res, err := wave(ctx, ctl, ctl.Topic(p.statusTopic), m, key, w.group, w.fail, waveTimeout, poll, out)
				results = append(results, res)
				if i == 0 {
					_ = printFirmwarePush(out, "table", pushResultOf(m))
				}
				if err != nil {
					_ = printRows(cmd.OutOrStdout(), a.output, results, "GROUP\tGATEWAYS\tCOMMITTED\tFAILED\tPENDING", waveLine)
					return err
				}
			}
			return printRows(cmd.OutOrStdout(), a.output, results, "GROUP\tGATEWAYS\tCOMMITTED\tFAILED\tPENDING", waveLine)
		},
	}
	p.add(c.Flags(), a)
	r.add(c.Flags())
	c.Flags().StringVar(&canary, "canary", "", "canary group label: the first wave")
	c.Flags().StringVar(&rest, "group", "", "group label of the second wave (the rest of the fleet)")
	c.Flags().Float64Var(&maxFail, "max-failure-rate", 0.05, "share of the second wave's gateways that may fail before the rollout halts")
	c.Flags().DurationVar(&waveTimeout, "wave-timeout", 30*time.Minute, "how long each wave may take")
	c.Flags().DurationVar(&poll, "poll", 2*time.Second, "how often the status topic is read")
	return c
}

func waveLine(w waveResult) string {
	return fmt.Sprintf("%s\t%d\t%d\t%v\t%v", w.Group, w.Gateways, len(w.Committed), w.Failed, w.Pending)
}
