// Package security holds the tests of the security and bad-input issue, and
// the helpers they share: a test PKI made with crypto/x509 (pki.go), a
// second Mosquitto with TLS, client certificates, a password file and ACLs
// that a test starts as its own child process (mosquitto.go), HS256 tokens
// for Pulsar (token.go), and the TLS + token + authorization Pulsar
// standalone that test/pulsar-secure.sh starts (pulsar.go).
//
// The tests: MQTT over TLS and mutual TLS with a password, and the errors a
// wrong CA, password or certificate give (mqtt_test.go); Pulsar over
// pulsar+ssl with token and certificate authentication and per-topic
// authorization (pulsar_test.go); that the real gateway binary leaks no
// secret into its log, metrics or status pages and creates private files
// (secrets_test.go); flood control against the real Mosquitto and buffer
// (flood_test.go); and wall-clock jumps against the buffer (clock_test.go).
// Integration tests skip under -short.
package security
