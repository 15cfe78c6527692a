package config

import (
	"regexp"
	"time"

	"github.com/edgegw/gateway/units"
)

// Fleet is how the gateway takes configuration from the fleet (signed
// bundles on a Pulsar config topic) and reports its status. The whole
// section is local-only: a pushed document may leave it out or repeat it
// unchanged, never change it. Fleet config is on when
// gateway.trusted_keys_file is set; heartbeats are on unless heartbeat is 0.
//
//	fleet:
//	  probation: 60s       # how long a pushed config has to prove itself
//	  heartbeat: 10s       # status heartbeat interval; 0s turns heartbeats off
//	  config_topic: config # in the uplink's tenant/namespace
//	  status_topic: status
//	  local_values:        # this gateway's values for ${local:NAME} in pushed documents
//	    dock_broker: tcp://10.1.4.2:1883
type Fleet struct {
	// Probation is how long a newly applied config has to show a healthy
	// uplink before it becomes the last known good; otherwise the gateway
	// returns to the previous config. Default 60s; between 1s and 1h.
	Probation units.Duration `yaml:"probation"`
	// Heartbeat is the interval of the status heartbeat; the gateway also
	// reports at every config state change. Default 10s; 0 turns heartbeats
	// (and the status topic) off.
	Heartbeat units.Duration `yaml:"heartbeat"`
	// ConfigTopic is the name of the compacted config topic in the uplink's
	// tenant and namespace (as set in the local file). Default "config".
	ConfigTopic string `yaml:"config_topic"`
	// StatusTopic is the name of the compacted status topic. Default "status".
	StatusTopic string `yaml:"status_topic"`
	// LocalValues are this gateway's values of the placeholders
	// ${local:NAME} in pushed documents (see Substitute): what must differ
	// per gateway in a document pushed to a group. Names are 1-64 letters,
	// digits, '_', '.' or '-'; values one line of at most 4 KiB; at most
	// 256. Default none.
	LocalValues map[string]string `yaml:"local_values"`
}

// DefaultFleet returns the defaults documented on Fleet.
func DefaultFleet() Fleet {
	return Fleet{
		Probation:   units.Duration(60 * time.Second),
		Heartbeat:   units.Duration(10 * time.Second),
		ConfigTopic: "config",
		StatusTopic: "status",
	}
}

var topicNameRe = regexp.MustCompile(`^[-=:.\w]{1,128}$`)

func (f *Fleet) validate(add func(path, format string, args ...any)) {
	if p := f.Probation.D(); p < time.Second || p > time.Hour {
		add("fleet.probation", "must be between 1s and 1h, got %s", p)
	}
	if h := f.Heartbeat.D(); h != 0 && (h < 100*time.Millisecond || h > time.Hour) {
		add("fleet.heartbeat", "must be 0 (off) or between 100ms and 1h, got %s", h)
	}
	if !topicNameRe.MatchString(f.ConfigTopic) {
		add("fleet.config_topic", "%s: use letters, digits, -_=:.", quote(f.ConfigTopic))
	}
	if !topicNameRe.MatchString(f.StatusTopic) {
		add("fleet.status_topic", "%s: use letters, digits, -_=:.", quote(f.StatusTopic))
	}
	if f.ConfigTopic == f.StatusTopic {
		add("fleet.status_topic", "must differ from fleet.config_topic")
	}
	validateLocalValues(f.LocalValues, add)
}
