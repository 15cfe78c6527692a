// Package all links every driver into a binary; import it for its side
// effect of registering them.
//
// The MQTT driver is always linked (all_mqtt.go). The GPIO and I²C drivers,
// and periph.io's host drivers with them, are left out of builds tagged
// nogpio (all_gpio.go); such a build registers stand-ins under the same names
// (all_nogpio.go) so that a config using them fails validation with a message
// that names the build tag, rather than "not a known driver".
package all
