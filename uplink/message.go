package uplink

import (
	"fmt"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/fxamacker/cbor/v2"

	"github.com/edgegw/gateway/event"
)

// Message property names.
const (
	PropGateway = "gateway"
	PropStream  = "stream"
	PropKind    = "kind"
	// PropDecodeError is set, with the reason, on an entry whose CBOR does
	// not decode; it is sent anyway (the sink dead-letters it) rather than
	// dropped or retried forever.
	PropDecodeError = "decode_error"
)

// message builds the Pulsar message of one entry: the stored bytes as the
// payload, SequenceID = seq, key = source, event time = the event's time.
func message(gateway, stream string, e Entry) (*pulsar.ProducerMessage, bool, error) {
	if e.Seq == 0 || e.Seq > 1<<63-1 {
		return nil, false, fmt.Errorf("uplink: seq %d out of range for a Pulsar sequence ID", e.Seq)
	}
	seq := int64(e.Seq)
	m := &pulsar.ProducerMessage{
		Payload:    e.Data,
		SequenceID: &seq,
		Properties: map[string]string{PropGateway: gateway, PropStream: stream},
	}
	h, err := peek(e.Data)
	if err != nil {
		m.Properties[PropDecodeError] = err.Error()
		return m, false, nil
	}
	m.Key = h.source
	m.EventTime = h.time
	m.Properties[PropKind] = h.kind
	return m, true, nil
}

// header is what the forwarder needs from an event.
type header struct {
	source, kind string
	time         time.Time
}

// peekFields are the envelope fields peek decodes; the others are skipped.
type peekFields struct {
	Source *string `cbor:"source"`
	Kind   *string `cbor:"kind"`
	Time   *int64  `cbor:"time"` // microseconds since the epoch, as event.Marshal writes it
}

var peekMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{MaxNestedLevels: 8, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// peek decodes only source, kind and time, about five times cheaper than a
// full event.Unmarshal. When any of them is missing or malformed it falls
// back to event.Unmarshal, for its precise error. TestPeekMatchesUnmarshal
// keeps the two in step.
func peek(b []byte) (header, error) {
	var f peekFields
	if err := peekMode.Unmarshal(b, &f); err == nil && f.Source != nil && f.Kind != nil && f.Time != nil &&
		*f.Source != "" && *f.Kind != "" {
		return header{source: *f.Source, kind: *f.Kind, time: time.UnixMicro(*f.Time).UTC()}, nil
	}
	ev, err := event.Unmarshal(b)
	if err != nil {
		return header{}, err
	}
	return header{source: ev.Source, kind: ev.Kind, time: ev.Time}, nil
}

func compressionType(name string) (pulsar.CompressionType, error) {
	switch name {
	case "none":
		return pulsar.NoCompression, nil
	case "lz4":
		return pulsar.LZ4, nil
	case "zstd", "":
		return pulsar.ZSTD, nil
	}
	return 0, fmt.Errorf("unknown compression %q (none, lz4 or zstd)", name)
}
