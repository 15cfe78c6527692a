package edge

import (
	"context"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/uplink"
)

// gatewayState computes the drivers.State that signalling drivers follow.
func gatewayState(db *buffer.DB, up *uplink.Client, budget int64) drivers.State {
	st := drivers.State{UplinkOnline: true}
	streams := up.Streams()
	if len(streams) == 0 {
		st.UplinkOnline = false
	}
	for _, s := range streams {
		if !s.Connected {
			st.UplinkOnline = false
			if st.UplinkOfflineSince.IsZero() || (!s.Since.IsZero() && s.Since.Before(st.UplinkOfflineSince)) {
				st.UplinkOfflineSince = s.Since
			}
		}
	}
	bs := db.Stats()
	fill := func(v, limit int64) {
		if limit > 0 {
			if f := float64(v) / float64(limit); f > st.BufferFill {
				st.BufferFill = f
			}
		}
	}
	fill(bs.LiveBytes, budget)
	for _, s := range bs.Streams {
		fill(s.Bytes, s.Config.MaxBytes)
		fill(s.Depth, s.Config.MaxEvents)
	}
	if st.BufferFill > 1 {
		st.BufferFill = 1
	}
	return st
}

// feedState gives every StateReceiver the gateway's state once a second
// until ctx ends.
func feedState(ctx context.Context, rs []drivers.StateReceiver, db *buffer.DB, up *uplink.Client, budget int64) {
	if len(rs) == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s := gatewayState(db, up, budget)
		for _, r := range rs {
			r.SetState(s)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
