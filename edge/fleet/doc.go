// Package fleet is fleet configuration on the gateway side and its shared
// formats: signed config bundles (see Bundle and bundle.cddl), operator keys
// and the gateway's trusted-keys file, the checks a gateway makes before it
// runs a pushed document (Verify, Merge), the Agent that applies bundles with
// probation and rollback, and the Status heartbeat.
//
// A bundle names a target (one gateway, or a group of them), carries a
// version that only ever grows, the time it was issued, the config document
// and an ed25519 signature over all of that (SigningBytes). Bundles travel on
// a compacted Pulsar topic keyed "gw:<id>" or "group:<label>". A gateway
// takes the bundle under its own key, else the newest one of its groups;
// refuses anything unsigned, signed by a key it does not trust, badly
// signed, meant for someone else, not newer than what it has applied, that
// changes a local-only setting, or that is not a valid config; merges its
// local-only settings (LocalOnly) into the rest; swaps the new pipeline in
// and keeps it only if the uplink is healthy within the probation window.
// The applied bundle (the last known good) is kept in the buffer's
// metadata and overrides the local file at the next start.
//
// The package does no Pulsar or buffer I/O itself: the gateway (package
// edge) supplies a Store and a Runtime, and uplink.Control carries the
// messages.
package fleet
