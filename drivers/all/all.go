// Package all links every driver into a binary; import it for its side
// effect of registering them.
//
// The MQTT drivers are always linked (all_mqtt.go): "mqtt", the site broker
// client, and "mqtt-embedded", the source on the gateway's embedded broker
// (a build tagged noembedded has the driver but refuses the broker: section
// it needs). The GPIO and I²C drivers, and periph.io's host drivers with
// them, are left out of builds tagged nogpio (all_gpio.go); such a build
// registers stand-ins under the same names (all_nogpio.go) so that a config
// using them fails validation with a message that names the build tag,
// rather than "not a known driver".
package all
