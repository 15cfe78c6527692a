package mqttbroker

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgegw/gateway/drivers"
)

// MQTT 5 reason codes the inbox sends.
const (
	ReasonQuotaExceeded     = 0x97 // the stream or the disk is full: send again later
	ReasonTopicNameInvalid  = 0x90 // a publish to $SYS/… or with wildcards
	ReasonImplementationErr = 0x83
)

// inbox makes the broker the gateway's ingest point (drivers.Inbox). Its
// OnPublish hook runs on the device's read goroutine, before mochi builds an
// ack: a publish on an attached topic is handed to the attached source and
// the hook returns packets.ErrRejectPacket, so mochi neither acks nor routes
// it. The source acks it (Publish.Ack writes the PUBACK or PUBREC) once the
// commit that holds it is on disk, so the device's own ack is the custody
// point and a device may pipeline: it keeps sending while earlier publishes
// are being committed, and acks go out in the order it sent them because the
// source commits in that order.
//
// Memory stays bounded: each device has at most window publishes between
// hook and ack (MQTT 5 clients are told so as Receive Maximum), and all
// devices together at most maxBytes of payload; beyond either the hook
// waits, which stops reading from that device's socket until acks free
// room.
type inbox struct {
	mochi.HookBase
	log      *slog.Logger
	srv      atomic.Pointer[mochi.Server]
	window   int
	bytes    *budget
	closed   chan struct{}
	closeOne sync.Once
	// gate, when set, holds every device publish until it is closed
	// (Broker.Hold/Release: a config apply swapping the sources).
	gate atomic.Pointer[chan struct{}]

	mu      sync.RWMutex
	routes  []*route
	devices map[*mochi.Client]*device
	// orphans are publishes a detached route took and never settled,
	// waiting (while held) for the next route that matches them.
	orphans []*inflight
	seq     atomic.Uint64 // numbers publishes in arrival order
}

// device is what the inbox keeps per connected device that publishes
// events: its window, and its ack writer. Acks are written by a goroutine
// of the device's own, in the order they are queued, so that a device that
// stops reading its socket can never stall the commits of the others: when
// its ack queue is full it is disconnected instead.
type device struct {
	window *budget
	acks   chan *packets.Packet // pointers: a slot is 8 bytes, a Packet hundreds
	gone   chan struct{}        // closed when the device disconnects
}

// route is one Attach.
type route struct {
	filters []string
	deliver func(drivers.Publish)

	mu       sync.Mutex
	detached bool
	open     map[*inflight]struct{} // delivered, neither acked nor refused
}

// inflight is one publish between the hook and its ack.
type inflight struct {
	cl      *mochi.Client
	r       atomic.Pointer[route] // the route that has it; another after a hand-over
	dev     *device
	size    int64
	seq     uint64          // arrival order, across devices
	pub     drivers.Publish // as delivered, for a hand-over
	settled atomic.Bool
}

func newInbox(log *slog.Logger, window int, maxBytes int64) *inbox {
	return &inbox{
		log: log, window: window, bytes: newBudget(maxBytes), closed: make(chan struct{}),
		devices: map[*mochi.Client]*device{},
	}
}

func (h *inbox) ID() string { return "edgegw-inbox" }

func (h *inbox) Provides(b byte) bool {
	return b == mochi.OnPublish || b == mochi.OnPacketRead || b == mochi.OnDisconnect
}

// close wakes every hook waiting for room; they give up (not delivered, not
// acked: the devices send again).
func (h *inbox) close() { h.closeOne.Do(func() { close(h.closed) }) }

// Attach implements drivers.Inbox.
func (h *inbox) Attach(filters []string, deliver func(drivers.Publish)) (func(), error) {
	if len(filters) == 0 {
		return nil, errors.New("mqttbroker: attach: no filters")
	}
	for _, f := range filters {
		if !validFilter(f) {
			return nil, errors.New("mqttbroker: attach: invalid filter " + clipTopic(f))
		}
	}
	r := &route{filters: append([]string(nil), filters...), deliver: deliver, open: map[*inflight]struct{}{}}
	h.mu.Lock()
	h.routes = append(h.routes, r)
	var mine []*inflight
	rest := h.orphans[:0]
	for _, f := range h.orphans {
		if r.matches(f.pub.Topic) && !f.cl.Closed() {
			mine = append(mine, f)
		} else {
			rest = append(rest, f)
		}
	}
	h.orphans = rest
	h.mu.Unlock()
	// Publishes the previous source took but did not commit go to this one
	// first, in the order they arrived, flagged as possibly seen before (it
	// may have committed one without acking it: the duplicate check finds
	// it). New publishes are held until the swap ends, so they follow.
	slices.SortFunc(mine, func(a, b *inflight) int { return cmp.Compare(a.seq, b.seq) })
	for _, f := range mine {
		r.mu.Lock()
		r.open[f] = struct{}{}
		r.mu.Unlock()
		f.r.Store(r)
		p := f.pub
		p.Dup = true
		r.deliver(p)
	}
	return func() { h.detach(r) }, nil
}

func (r *route) matches(topic string) bool {
	for _, f := range r.filters {
		if covers(f, topic) {
			return true
		}
	}
	return false
}

// detach removes r. Publishes r took but never settled are handed to the
// next route that matches them when the broker is held (a config apply
// swapping the sources); otherwise, or if none matches by Release, their
// devices are disconnected, so that they send them again, and their room
// is given back.
func (h *inbox) detach(r *route) {
	r.mu.Lock()
	r.detached = true
	open := r.open
	r.open = nil
	r.mu.Unlock()
	h.mu.Lock()
	for i, x := range h.routes {
		if x == r {
			h.routes = append(h.routes[:i:i], h.routes[i+1:]...)
			break
		}
	}
	for f := range open {
		if !f.settled.Load() {
			h.orphans = append(h.orphans, f)
		}
	}
	held := h.gate.Load() != nil
	h.mu.Unlock()
	if !held {
		h.kickOrphans()
	}
}

// kickOrphans gives up the publishes no route took over: their devices are
// disconnected and send them again.
func (h *inbox) kickOrphans() {
	h.mu.Lock()
	orphans := h.orphans
	h.orphans = nil
	h.mu.Unlock()
	kicked := map[*mochi.Client]bool{}
	for _, f := range orphans {
		if !f.settled.CompareAndSwap(false, true) {
			continue
		}
		f.release(h)
		if !kicked[f.cl] {
			kicked[f.cl] = true
			f.cl.Stop(errors.New("gateway source detached with the publish not acked"))
		}
	}
}

func (h *inbox) match(topic string) *route {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, r := range h.routes {
		if r.matches(topic) {
			return r
		}
	}
	return nil
}

// OnPacketRead refuses a QoS 1/2 publish to a topic no client may publish
// to ($SYS/…, wildcards), which mochi would otherwise drop without an ack,
// leaving the device waiting: MQTT 5 devices get reason 0x90 in their ack,
// 3.1.1 devices are disconnected (their protocol has no refusal).
func (h *inbox) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 || cl.Net.Inline ||
		mochi.IsValidFilter(pk.TopicName, true) {
		return pk, nil
	}
	if cl.Properties.ProtocolVersion >= 5 {
		_ = cl.WritePacket(refusal(pk.PacketID, pk.FixedHeader.Qos, ReasonTopicNameInvalid, "topic name not allowed for publish"))
		return pk, nil // mochi drops it
	}
	h.log.Warn("publish to a reserved or wildcard topic refused; disconnecting the client (MQTT 3.1.1 has no other refusal)",
		"client_id", cl.ID, "listener", cl.Net.Listener, "topic", clipTopic(pk.TopicName))
	return pk, packets.ErrRejectPacket
}

// OnPublish hands a publish on an attached topic to its source.
func (h *inbox) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // our own re-publish to local subscribers (route)
	}
	if !h.pass(cl) {
		return pk, packets.ErrRejectPacket // the device or the broker went away: no ack
	}
	r := h.match(pk.TopicName)
	if r == nil {
		return pk, nil // not an event: an ordinary broker message
	}
	f := &inflight{cl: cl, size: int64(len(pk.Payload) + len(pk.TopicName))}
	f.r.Store(r)
	if !h.take(f) {
		return pk, packets.ErrRejectPacket // the device or the broker went away: no ack
	}
	r.mu.Lock()
	if r.detached {
		r.mu.Unlock()
		f.release(h)
		return pk, packets.ErrRejectPacket
	}
	r.open[f] = struct{}{}
	f.seq = h.seq.Add(1)
	r.mu.Unlock()
	qos, id, retain := pk.FixedHeader.Qos, pk.PacketID, pk.FixedHeader.Retain
	topic, payload := pk.TopicName, pk.Payload
	f.pub = drivers.Publish{
		Client: cl.ID, Listener: cl.Net.Listener, Topic: topic, Payload: payload,
		QoS: qos, Dup: pk.FixedHeader.Dup, Retain: retain,
		Ack: func() {
			if !f.settle() {
				return
			}
			f.release(h)
			h.ack(f, qos, id)
			h.route(topic, payload, retain, qos)
		},
		Refuse: func(reason byte) bool {
			if qos == 0 || cl.Properties.ProtocolVersion < 5 || !f.settle() {
				return false
			}
			f.release(h)
			f.send(refusal(id, qos, reason, reasonText(reason)))
			return true
		},
	}
	r.deliver(f.pub)
	return pk, packets.ErrRejectPacket
}

// hold makes device publishes wait (before they are matched to a source)
// until release; release lets them go. While the sources are swapped no
// publish can be taken for an ordinary broker message for want of a route.
func (h *inbox) hold() {
	ch := make(chan struct{})
	if old := h.gate.Swap(&ch); old != nil {
		close(*old)
	}
}

func (h *inbox) release() {
	if ch := h.gate.Swap(nil); ch != nil {
		close(*ch)
	}
	h.kickOrphans() // what no new source took over
}

// pass waits while publishes are held; false when the device or the
// broker went away meanwhile.
func (h *inbox) pass(cl *mochi.Client) bool {
	for {
		ch := h.gate.Load()
		if ch == nil {
			return true
		}
		t := time.NewTimer(gonePoll)
		select {
		case <-*ch:
		case <-h.closed:
			t.Stop()
			return false
		case <-t.C:
			if cl.Closed() {
				return false
			}
		}
		t.Stop()
	}
}

// OnDisconnect forgets a device and stops its ack writer. Publishes it
// still has in the pipeline give their room back to the shared budget when
// settled; their acks are not written.
func (h *inbox) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	h.mu.Lock()
	d := h.devices[cl]
	delete(h.devices, cl)
	h.mu.Unlock()
	if d != nil {
		close(d.gone)
	}
}

// device returns cl's state, making it (and starting its ack writer) on
// its first event publish.
func (h *inbox) device(cl *mochi.Client) *device {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.devices[cl]
	if d == nil {
		// Acks can outnumber the window: a slot is free again once its ack
		// is queued, before it is written.
		d = &device{window: newBudget(int64(h.window)), acks: make(chan *packets.Packet, 2*h.window), gone: make(chan struct{})}
		h.devices[cl] = d
		go d.writeAcks(cl, h.closed)
	}
	return d
}

// writeAcks writes d's acks in order until the device or the broker goes.
func (d *device) writeAcks(cl *mochi.Client, closed <-chan struct{}) {
	for {
		select {
		case pk := <-d.acks:
			_ = cl.WritePacket(*pk) // a device that is gone sends the publish again
		case <-d.gone:
			return
		case <-closed:
			return
		}
	}
}

// send queues an ack for the device's writer. A device whose queue is full
// has stopped reading its acks: it is disconnected (it sends its unacked
// publishes again when it comes back), rather than made to stall the
// committer.
func (f *inflight) send(pk packets.Packet) {
	select {
	case f.dev.acks <- &pk:
	case <-f.dev.gone:
	default:
		f.cl.Stop(errors.New("device does not read its acks"))
	}
}

// take waits for room in the device's window and the shared byte budget.
// It gives up when the device's connection or the broker closes.
func (h *inbox) take(f *inflight) bool {
	f.dev = h.device(f.cl)
	w := f.dev.window
	if !w.take(1, h.closed, f.cl.Closed) {
		return false
	}
	if !h.bytes.take(f.size, h.closed, f.cl.Closed) {
		w.give(1)
		return false
	}
	return true
}

// settle marks f acked or refused; false when it already was (or its route
// was detached).
func (f *inflight) settle() bool {
	if !f.settled.CompareAndSwap(false, true) {
		return false
	}
	r := f.r.Load()
	r.mu.Lock()
	if r.open != nil {
		delete(r.open, f)
	}
	r.mu.Unlock()
	return true
}

func (f *inflight) release(h *inbox) {
	f.dev.window.give(1)
	h.bytes.give(f.size)
}

// ack writes the device's PUBACK (QoS 1) or PUBREC (QoS 2). A QoS 2 flow
// then continues in mochi: the PUBREC is kept in flight until the device's
// PUBREL, which mochi answers with PUBCOMP. A device that is gone gets
// nothing; it sends the publish again (DUP), and the gateway's duplicate
// check recognises it.
func (h *inbox) ack(f *inflight, qos byte, id uint16) {
	switch qos {
	case 1:
		f.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id, Created: time.Now().Unix()})
	case 2:
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: id, Created: time.Now().Unix()}
		if f.cl.State.Inflight.Set(pk) {
			if srv := h.srv.Load(); srv != nil {
				atomic.AddInt64(&srv.Info.Inflight, 1)
			}
		}
		f.send(pk)
	}
}

// route passes an event's message on to local subscribers (a dashboard on
// the device listener), as a broker would have, after it was committed.
func (h *inbox) route(topic string, payload []byte, retain bool, qos byte) {
	srv := h.srv.Load()
	if srv == nil {
		return
	}
	if !retain && atomic.LoadInt64(&srv.Info.Subscriptions) == 0 {
		return // nobody to route to: skip the lookup
	}
	if err := srv.Publish(topic, payload, retain, qos); err != nil {
		h.log.Debug("route to local subscribers failed", "topic", clipTopic(topic), "err", err)
	}
}

// refusal is the negative PUBACK (QoS 1) or PUBREC (QoS 2) of an MQTT 5
// publish.
func refusal(id uint16, qos byte, reason byte, text string) packets.Packet {
	typ := packets.Puback
	if qos == 2 {
		typ = packets.Pubrec
	}
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ}, PacketID: id, ReasonCode: reason,
		Properties: packets.Properties{ReasonString: text}, Created: time.Now().Unix(),
	}
}

func reasonText(reason byte) string {
	switch reason {
	case ReasonQuotaExceeded:
		return "gateway buffer full: send again later"
	case ReasonTopicNameInvalid:
		return "topic name not allowed for publish"
	}
	return "not accepted"
}

// clipTopic keeps log lines short whatever a client sends.
func clipTopic(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// budget is a counting semaphore that a waiter can leave when a stop
// channel closes or its client goes away.
type budget struct {
	mu    sync.Mutex
	used  int64
	max   int64
	freed chan struct{}
}

func newBudget(max int64) *budget { return &budget{max: max, freed: make(chan struct{})} }

// gonePoll is how often a waiter checks whether its client went away (mochi
// has no channel for that).
const gonePoll = 250 * time.Millisecond

// take reserves n, waiting while that would pass max (one reservation of
// any size fits an empty budget). It reports false when stop closed or gone
// reported true first.
func (b *budget) take(n int64, stop <-chan struct{}, gone func() bool) bool {
	var tick *time.Ticker
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			if tick != nil {
				tick.Stop()
			}
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		if tick == nil {
			tick = time.NewTicker(gonePoll)
			defer tick.Stop()
		}
		select {
		case <-freed:
		case <-stop:
			return false
		case <-tick.C:
			if gone() {
				return false
			}
		}
	}
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// inUse is what is reserved now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Attach makes the broker the ingest point of publishes on filters: see
// drivers.Inbox. Attach before Start or after; publishes that arrive before
// anything is attached are ordinary broker messages.
func (b *Broker) Attach(filters []string, deliver func(drivers.Publish)) (detach func(), err error) {
	return b.inbox.Attach(filters, deliver)
}

var _ drivers.Inbox = (*Broker)(nil)

// Hold makes the devices' publishes wait until Release, keeping their
// connections: for swapping the sources attached to a running broker (a
// config apply) without a moment where a publish finds no source.
func (b *Broker) Hold() { b.inbox.hold() }

// Release ends Hold.
func (b *Broker) Release() { b.inbox.release() }
