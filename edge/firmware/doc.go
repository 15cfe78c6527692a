// Package firmware is firmware over the air, gateway and operator side,
// without Pulsar I/O of its own: the signed release Manifest and its checks
// (Check, the refusal reasons in the order they are checked), the payloads
// an image travels as (zstd, or a zstd delta against the binary a gateway
// runs: Encode, Decode), the resumable download of a payload's parts
// (Download), the A/B slots and the state file that the launcher and the
// gateway share (Dir, State), and the probation the launcher runs a new
// binary through (Launcher).
//
// A manifest is signed with the operator keys of fleet config, in its own
// signature domain: a config bundle's signature can never pass for a
// manifest's, nor the reverse. It names a target (gateway or group), a
// platform (GOOS/GOARCH[/vARM]), a version that only grows per target, the
// full image's size and SHA-256, the store format the image's build writes,
// and one or more payloads, each cut into parts whose SHA-256 it lists, so
// that every part is checked before it is kept on disk.
package firmware
