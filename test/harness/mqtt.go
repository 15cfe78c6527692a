package harness

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Publisher is a real MQTT client publishing at QoS 1.
type Publisher struct {
	t testing.TB
	c mqtt.Client
}

// NewPublisher connects a clean-session client to broker.
func NewPublisher(t testing.TB, broker, clientID string) *Publisher {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect %s: %v", broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &Publisher{t: t, c: c}
}

// Publish sends payload to topic at QoS 1 and waits for the broker's PUBACK.
func (p *Publisher) Publish(topic string, payload []byte) error {
	tok := p.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(30 * time.Second) {
		return fmt.Errorf("publish to %s: no PUBACK within 30s", topic)
	}
	return tok.Error()
}

// MustPublish is Publish that fails the test on error.
func (p *Publisher) MustPublish(topic string, payload []byte) {
	p.t.Helper()
	if err := p.Publish(topic, payload); err != nil {
		p.t.Fatal(err)
	}
}

// Close disconnects.
func (p *Publisher) Close() { p.c.Disconnect(100) }

// TryPublisher is NewPublisher without a test: it returns the error.
func TryPublisher(broker, clientID string) (*Publisher, error) {
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", broker, tok.Error())
	}
	return &Publisher{c: c}, nil
}
