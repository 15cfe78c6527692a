package uplink

import (
	"context"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"
)

func (c *Control) producerOptions(topic string) pulsar.ProducerOptions {
	return pulsar.ProducerOptions{
		Topic:           topic,
		DisableBatching: true,
		SendTimeout:     c.c.opts.SendTimeout.D(),
	}
}

// Publish sends one keyed message to topic and waits for its receipt (or
// ctx's end). The topic's producer is created on first use and kept; after a
// failed send it is closed and created again on the next call.
func (c *Control) Publish(ctx context.Context, topic string, m KeyedMessage) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	p := c.status[topic]
	c.mu.Unlock()
	if p == nil {
		pc, err := c.c.pulsarClient()
		if err != nil {
			return err
		}
		p, err = whileCtx(ctx, func() (pulsar.Producer, error) { return pc.CreateProducer(c.producerOptions(topic)) }, pulsar.Producer.Close)
		if err != nil {
			return fmt.Errorf("uplink: producer on %s: %w", topic, err)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			p.Close()
			return ErrClosed
		}
		c.status[topic] = p
		c.mu.Unlock()
	}
	if _, err := p.Send(ctx, controlMessage(m)); err != nil {
		c.mu.Lock()
		if c.status[topic] == p {
			delete(c.status, topic)
		}
		c.mu.Unlock()
		p.Close()
		return fmt.Errorf("uplink: send to %s: %w", topic, err)
	}
	return nil
}

func controlMessage(m KeyedMessage) *pulsar.ProducerMessage {
	return &pulsar.ProducerMessage{Key: m.Key, Payload: m.Payload, Properties: m.Properties}
}

// PublishExclusive takes the only producer of topic (Pulsar's exclusive
// access mode: creating it fails while another producer is connected), then
// reads the topic to its end, calls build with what it read and sends the
// message build returns, waiting for its receipt. Holding the producer while
// reading makes read-then-write atomic among PublishExclusive callers: two
// operators cannot both read version N and both publish N+1.
func (c *Control) PublishExclusive(ctx context.Context, topic string, build func(read []KeyedMessage) (KeyedMessage, error)) error {
	pc, err := c.c.pulsarClient()
	if err != nil {
		return err
	}
	o := c.producerOptions(topic)
	o.ProducerAccessMode = pulsar.ProducerAccessModeExclusive
	p, err := whileCtx(ctx, func() (pulsar.Producer, error) { return pc.CreateProducer(o) }, pulsar.Producer.Close)
	if err != nil {
		return fmt.Errorf("uplink: exclusive producer on %s (is another push running?): %w", topic, err)
	}
	defer p.Close()
	read, err := c.Read(ctx, topic)
	if err != nil {
		return err
	}
	m, err := build(read)
	if err != nil {
		return err
	}
	if _, err := p.Send(ctx, controlMessage(m)); err != nil {
		return fmt.Errorf("uplink: send to %s: %w", topic, err)
	}
	return nil
}
