//go:build noembedded

package config

// EmbeddedBrokerBuilt says whether this build has the embedded MQTT broker
// (builds tagged noembedded leave it out, and refuse a broker: section).
const EmbeddedBrokerBuilt = false
