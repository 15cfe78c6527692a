package event

import "time"

// Kinds of events. Drivers may add their own kinds; these are the ones the
// gateway and the sink know by name.
const (
	KindScan    = "scan"
	KindReading = "reading"
	KindGPIO    = "gpio"
	KindGap     = "gap"
)

// Event is one envelope of the wire contract (see event.cddl). The identity
// of an event everywhere is (Gateway, Stream, Seq). Encode it with Marshal,
// decode it with Unmarshal; the struct tags name the CBOR keys.
type Event struct {
	Gateway  string         `cbor:"gateway"`
	Stream   string         `cbor:"stream"`
	Seq      uint64         `cbor:"seq"`
	Source   string         `cbor:"source"`
	Kind     string         `cbor:"kind"`
	Time     time.Time      `cbor:"time"`
	Received time.Time      `cbor:"received"`
	Boot     uint64         `cbor:"boot"`
	Mono     uint64         `cbor:"mono"`
	Attrs    map[string]any `cbor:"attrs,omitempty"`
	Raw      []byte         `cbor:"raw,omitempty"`

	// DedupKey and Redelivered are in-process hints from a driver to the
	// gateway and are never encoded. A driver whose source may re-deliver
	// an input it already handed over (MQTT after a lost PUBACK, flagged
	// DUP) sets DedupKey to a digest of the input; when Redelivered is true
	// and that key was committed before, the gateway does not store the
	// event again.
	DedupKey    []byte `cbor:"-"`
	Redelivered bool   `cbor:"-"`
}
