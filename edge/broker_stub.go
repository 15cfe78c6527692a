//go:build noembedded

package edge

import (
	"context"
	"errors"
	"log/slog"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqttbroker"
)

// errNoEmbeddedBroker is what a pipeline of a build tagged noembedded fails
// with when its config has a broker: section.
var errNoEmbeddedBroker = errors.New("this build has no embedded broker (built with -tags noembedded)")

// embeddedBroker stands in for the mochi-mqtt broker that this build leaves
// out; no value of it is ever made.
type embeddedBroker struct{}

func (*embeddedBroker) Start(context.Context) error { return errNoEmbeddedBroker }
func (*embeddedBroker) Close() error                { return nil }
func (*embeddedBroker) Hold()                       {}
func (*embeddedBroker) Release()                    {}
func (*embeddedBroker) Attach([]string, func(drivers.Publish)) (func(), error) {
	return nil, errNoEmbeddedBroker
}

func newBroker(mqttbroker.Config, *slog.Logger) (*embeddedBroker, error) {
	return nil, errNoEmbeddedBroker
}
