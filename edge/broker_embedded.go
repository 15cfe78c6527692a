//go:build !noembedded

package edge

import (
	"log/slog"

	"github.com/edgegw/gateway/drivers/mqttbroker"
)

// embeddedBroker is the MQTT broker a gateway runs itself (mochi-mqtt), for
// small installs and vehicles. Builds tagged noembedded leave it out
// (broker_stub.go).
type embeddedBroker = mqttbroker.Broker

// newBroker builds the embedded broker of a pipeline; the pipeline starts
// it once its sources have attached.
func newBroker(cfg mqttbroker.Config, log *slog.Logger) (*embeddedBroker, error) {
	return mqttbroker.New(cfg, log)
}
