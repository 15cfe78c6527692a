//go:build !noembedded

package edge

import (
	"context"
	"log/slog"

	"github.com/edgegw/gateway/drivers/mqttbroker"
)

// embeddedBroker is the MQTT broker a gateway runs itself (mochi-mqtt), for
// small installs and vehicles. Builds tagged noembedded leave it out
// (broker_stub.go).
type embeddedBroker = mqttbroker.Broker

// startBroker builds and starts the embedded broker of a pipeline.
func startBroker(ctx context.Context, cfg mqttbroker.Config, log *slog.Logger) (*embeddedBroker, error) {
	b, err := mqttbroker.New(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}
