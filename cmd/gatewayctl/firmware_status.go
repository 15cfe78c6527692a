package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

// firmwareRow is one gateway in `firmware status`.
type firmwareRow struct {
	Gateway  string          `json:"gateway"`
	Online   bool            `json:"online"`
	Build    string          `json:"build"`
	Firmware *fleet.Firmware `json:"firmware"` // nil: OTA is off on that gateway
}

// firmwareRows reads the status topic's latest heartbeat per gateway.
func firmwareRows(ctx context.Context, ctl *uplink.Control, topic string) ([]firmwareRow, error) {
	msgs, err := ctl.Read(ctx, topic)
	if err != nil {
		return nil, err
	}
	var rows []firmwareRow
	now := time.Now()
	for _, m := range uplink.Latest(msgs) {
		s, err := fleet.DecodeStatus(m.Payload)
		if err != nil {
			continue
		}
		rows = append(rows, firmwareRow{Gateway: s.Gateway, Online: s.Online(now), Build: s.Build.Version, Firmware: s.Firmware})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Gateway < rows[j].Gateway })
	return rows, nil
}

func (r firmwareRow) inGroup(g string) bool {
	return r.Firmware != nil && slices.Contains(r.Firmware.Groups, g)
}

func newFirmwareStatusCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show each gateway's firmware: running release, and the latest one's state (downloading %, probation, committed, rolled back and why)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, ctl, done, err := p.connect(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer done()
			rows, err := firmwareRows(ctx, ctl, ctl.Topic(p.statusTopic))
			if err != nil {
				return err
			}
			return printRows(cmd.OutOrStdout(), a.output, rows, "GATEWAY\tONLINE\tPLATFORM\tBUILD\tRUNNING\tSTATE\tRELEASE\tPROGRESS\tREASON",
				func(r firmwareRow) string {
					f := r.Firmware
					if f == nil {
						return fmt.Sprintf("%s\t%v\t-\t%s\t-\toff\t-\t-\tno launcher, or fleet config off", r.Gateway, r.Online, r.Build)
					}
					prog := "-"
					if f.State == "downloading" || f.State == "pending" {
						prog = fmt.Sprintf("%.0f%% of %d B", f.Percent, f.Bytes)
						if f.Delta {
							prog += " (delta)"
						}
					}
					return fmt.Sprintf("%s\t%v\t%s\t%s\t%d\t%s\t%d\t%s\t%s", r.Gateway, r.Online, f.Platform, r.Build, f.Running, f.State,
						f.Version, prog, truncate(f.Reason, 120))
				})
		},
	}
	p.add(c.Flags(), a)
	return c
}
