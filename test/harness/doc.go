// Package harness runs the real gateway binary for end-to-end and fault
// tests: it builds the binaries once, writes a config, starts the gateway as
// a child process (so tests can SIGKILL it for real), waits for it to be
// ready, and reads what reached Pulsar.
package harness
