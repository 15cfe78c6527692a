package mqtt

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/edgegw/gateway/drivers"
)

// inboxClient is the driver's transport when its broker is "embedded": the
// gateway's own broker hands it the devices' publishes in process
// (drivers.Inbox), and the driver's ack after the commit is the device's
// PUBACK. There is no connection, session or client ID of ours.
type inboxClient struct {
	inbox drivers.Inbox
	o     clientOptions

	mu     sync.Mutex
	detach func()
}

func newInboxClient(inbox drivers.Inbox) newClientFunc {
	return func(o clientOptions) client { return &inboxClient{inbox: inbox, o: o} }
}

// Connect has nothing to connect; like a network client it then runs
// onConnect, which subscribes (attaches).
func (c *inboxClient) Connect(context.Context) error {
	go c.o.onConnect()
	return nil
}

// Subscribe attaches the filters to the inbox. The QoS of a subscription
// does not apply: each publish is acked as its device asked.
func (c *inboxClient) Subscribe(_ context.Context, filters map[string]byte) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detach != nil {
		return nil, nil
	}
	list := make([]string, 0, len(filters))
	for f := range filters {
		list = append(list, f)
	}
	detach, err := c.inbox.Attach(list, func(p drivers.Publish) {
		c.o.onMessage(message{topic: p.Topic, payload: p.Payload, qos: p.QoS, dup: p.Dup, ack: p.Ack, refuse: p.Refuse})
	})
	if err != nil {
		return nil, err
	}
	c.detach = detach
	return nil, nil
}

// Disconnect detaches: devices with publishes not acked yet are
// disconnected by the broker and send them again.
func (c *inboxClient) Disconnect(time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detach != nil {
		c.detach()
		c.detach = nil
	}
}

var errNoInbox = errors.New(`mqtt: brokers is "embedded" but the gateway runs no embedded broker (no broker: section)`)
