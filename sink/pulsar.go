package sink

import (
	"log/slog"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
)

// clientOptions maps the config to the Pulsar client's options.
func (p *PulsarConfig) clientOptions(log *slog.Logger, reg prometheus.Registerer) pulsar.ClientOptions {
	o := pulsar.ClientOptions{
		URL:                        p.ServiceURL,
		OperationTimeout:           p.OperationTimeout.D(),
		ConnectionTimeout:          p.OperationTimeout.D(),
		TLSTrustCertsFilePath:      p.TLS.TrustCertsFile,
		TLSCertificateFile:         p.TLS.CertFile,
		TLSKeyFilePath:             p.TLS.KeyFile,
		TLSAllowInsecureConnection: p.TLS.AllowInsecure,
		TLSValidateHostname:        !p.TLS.SkipHostnameVerification,
		Logger:                     plog.NewLoggerWithSlog(log.With("component", "pulsar")),
		MetricsRegisterer:          reg,
	}
	if p.TokenFile != "" {
		o.Authentication = pulsar.NewAuthenticationTokenFromFile(p.TokenFile)
	}
	return o
}

// consumerOptions subscribes to the event topics: by pattern (new streams are
// picked up every DiscoveryInterval) or by list; new subscriptions start at
// the earliest message, so nothing published before the first sink started
// is missed.
func (p *PulsarConfig) consumerOptions() (pulsar.ConsumerOptions, error) {
	o := pulsar.ConsumerOptions{
		SubscriptionName:            p.Subscription,
		Type:                        pulsar.KeyShared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		ReceiverQueueSize:           p.ReceiverQueueSize,
		AutoDiscoveryPeriod:         p.Topics.DiscoveryInterval.D(),
	}
	if p.SubscriptionType == SubFailover {
		o.Type = pulsar.Failover
	}
	if len(p.Topics.Names) > 0 {
		for _, n := range p.Topics.Names {
			o.Topics = append(o.Topics, p.fullTopic(n))
		}
		return o, nil
	}
	pat, err := p.topicsPattern()
	if err != nil {
		return o, err
	}
	o.TopicsPattern = pat
	return o, nil
}
