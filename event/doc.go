// Package event is the wire contract of the gateway: the Event envelope and
// its CBOR codec. Every driver produces Events, the buffer stores their
// encoding, the uplink sends it to Pulsar and the cloud sink decodes it, so
// this package imports nothing of the project and changes only compatibly.
//
// The schema is event.cddl (RFC 8610) beside this file. In short:
//
//   - One CBOR map with text keys, encoded with RFC 8949 core deterministic
//     encoding (shortest heads, shortest floats, sorted keys, definite
//     lengths): the same Event always gives the same bytes.
//   - The envelope times ("time", "received") are integers: microseconds
//     since 1970-01-01T00:00:00Z. Marshal truncates to the microsecond.
//   - Attribute values are text, integers, floats, booleans, byte strings and
//     times; a time attribute is tag 1 (epoch seconds) holding an integer
//     when it is a whole second, else a float, and decodes to the microsecond.
//   - Unmarshal is strict about what it knows (required fields, types,
//     duplicate keys, indefinite lengths, nesting, size) and ignores unknown
//     top-level keys, so that a newer writer can add a field without breaking
//     older readers.
//
// Values are normalised so that Unmarshal(Marshal(e)) equals Normalize(e):
// times in UTC truncated to the microsecond, integers as int64 (uint64 only
// above math.MaxInt64), float32 as float64, empty Attrs and Raw as nil.
package event
