package uplink

import (
	"context"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"
)

// ReadFrom reads topic in order from the message after start (a message ID
// as ReadFrom handed it to fn; nil: from the earliest message) and calls fn
// with each message and its ID, until fn returns done or an error, or ctx
// ends. It serves the firmware images topic, whose readers resume after the
// last part they kept.
func (c *Control) ReadFrom(ctx context.Context, topic string, start []byte, fn func(m KeyedMessage, id []byte) (done bool, err error)) error {
	from := pulsar.EarliestMessageID()
	if start != nil {
		id, err := pulsar.DeserializeMessageID(start)
		if err != nil {
			return fmt.Errorf("uplink: message ID to resume from: %w", err)
		}
		from = id
	}
	pc, err := c.c.pulsarClient()
	if err != nil {
		return err
	}
	r, err := whileCtx(ctx, func() (pulsar.Reader, error) {
		return pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: from})
	}, pulsar.Reader.Close)
	if err != nil {
		return fmt.Errorf("uplink: reader on %s: %w", topic, err)
	}
	defer r.Close()
	for {
		m, err := r.Next(ctx)
		if err != nil {
			return err
		}
		done, err := fn(keyed(m), m.ID().Serialize())
		if done || err != nil {
			return err
		}
	}
}
