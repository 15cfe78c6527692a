// Package firmware tests what ships to the boards, as built by `make
// firmware` and `make packages` (packaging/): the cross-built binaries
// (static, stripped, reproducible, the right instruction set), the same
// binaries run under qemu-user against the real Mosquitto and Pulsar that
// test/ starts, the Debian package (metadata, contents, and a real dpkg
// install, upgrade, remove and purge into a scratch root), and upgrade safety:
// buffer files written by earlier formats (testdata/) open and drain with the
// current firmware.
//
// The tests build from a snapshot of the source tree in a temporary
// directory, so the builds see one consistent tree and nothing is written
// into the checkout. Everything here is skipped under -short.
package firmware
