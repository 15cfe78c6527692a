package uplink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrDedupDisabled matches (errors.Is) every *DedupDisabledError.
var ErrDedupDisabled = errors.New("uplink: broker deduplication is off")

// DedupDisabledError says that deduplication is off for the namespace, where
// that was decided, and how to turn it on. Without deduplication a re-send
// after a reconnect would store duplicates, so forwarders refuse to send
// while Options.RequireDedup is true.
type DedupDisabledError struct {
	Namespace string // tenant/namespace
	// Source is "namespace policy" when the namespace sets it explicitly,
	// else "broker default" (brokerDeduplicationEnabled).
	Source string
}

func (e *DedupDisabledError) Error() string {
	return fmt.Sprintf("uplink: message deduplication is off for namespace %s (%s); "+
		"turn it on with `pulsar-admin namespaces set-deduplication %s --enable` "+
		"(or brokerDeduplicationEnabled=true in broker.conf for every namespace without its own policy)",
		e.Namespace, e.Source, e.Namespace)
}

// Is makes errors.Is(err, ErrDedupDisabled) hold.
func (e *DedupDisabledError) Is(target error) bool { return target == ErrDedupDisabled }

// CheckDedup asks the admin API whether deduplication is on for the
// namespace: its own policy when it has one, else the broker default. It
// returns nil when it is on, a *DedupDisabledError when it is off, and
// another error when the answer could not be had (network, permissions).
// Topic-level overrides are not consulted.
func (c *Client) CheckDedup(ctx context.Context) error {
	a, err := c.adminClient()
	if err != nil {
		return err
	}
	ns := c.opts.namespacePath()
	on, err := a.dedupPolicy(ctx, ns)
	if err != nil {
		return fmt.Errorf("uplink: reading the policies of namespace %s: %w", ns, err)
	}
	if on != nil {
		if *on {
			return nil
		}
		return &DedupDisabledError{Namespace: ns, Source: "namespace policy"}
	}
	conf, err := a.runtimeConfig(ctx)
	if err != nil {
		return fmt.Errorf("uplink: namespace %s has no deduplication policy and the broker default could not be read: %w", ns, err)
	}
	def, err := strconv.ParseBool(conf["brokerDeduplicationEnabled"])
	if err != nil || !def {
		return &DedupDisabledError{Namespace: ns, Source: "broker default"}
	}
	return nil
}

// ensureDedup runs CheckDedup once per client when RequireDedup is set, and
// remembers a success.
func (c *Client) ensureDedup(ctx context.Context) error {
	if !c.opts.RequireDedup {
		return nil
	}
	c.mu.Lock()
	ok := c.dedupOK
	c.mu.Unlock()
	if ok {
		return nil
	}
	if err := c.CheckDedup(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.dedupOK = true
	c.mu.Unlock()
	return nil
}
