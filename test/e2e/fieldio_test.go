package e2e

import (
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
)

// GPIO and I2C events (simulated pins and a simulated BME280: the drivers'
// own code paths, no hardware) reach Pulsar through the same pipeline as
// MQTT, on the telemetry stream.
func TestFieldIOReachesPulsar(t *testing.T) {
	s := harness.NewSetup(t, "fieldio", harness.Options{ExtraSources: `
  - name: door-io
    driver: gpio
    gpio:
      simulate: true
      inputs:
        - pin: GPIO17
          source: door-contact-1
          edge: both
          debounce: 20ms
  - name: climate
    driver: i2c
    i2c:
      simulate: true
      sensor: bme280
      interval: 200ms
      source: cargo-climate
`})
	col := harness.Collect(t, s.Topic("telemetry"))
	s.Gateway.Start()
	var gpioEv, temp, hum, press *event.Event
	s.Gateway.Eventually(90*time.Second, "gpio and bme280 events in Pulsar", func() bool {
		for _, m := range col.Messages() {
			e := m.Event
			if e == nil {
				continue
			}
			switch {
			case e.Kind == event.KindGPIO && e.Source == "door-contact-1":
				gpioEv = e
			case e.Kind == event.KindReading && e.Source == "cargo-climate":
				switch e.Attrs["metric"] {
				case "temperature":
					temp = e
				case "humidity":
					hum = e
				case "pressure":
					press = e
				}
			}
		}
		return gpioEv != nil && temp != nil && hum != nil && press != nil
	})
	if gpioEv.Attrs["pin"] != "GPIO17" || gpioEv.Stream != "telemetry" || gpioEv.Gateway != s.ID {
		t.Fatalf("gpio event %+v", gpioEv)
	}
	if _, ok := gpioEv.Attrs["level"].(bool); !ok {
		t.Fatalf("gpio level %T %v", gpioEv.Attrs["level"], gpioEv.Attrs["level"])
	}
	for _, c := range []struct {
		e        *event.Event
		unit     string
		min, max float64
	}{{temp, "Cel", -40, 85}, {hum, "%RH", 0, 100}, {press, "hPa", 300, 1100}} {
		v, ok := c.e.Attrs["value"].(float64)
		if !ok || v < c.min || v > c.max || c.e.Attrs["unit"] != c.unit {
			t.Fatalf("%v reading: value %v unit %v, want %s in [%v, %v]", c.e.Attrs["metric"], c.e.Attrs["value"], c.e.Attrs["unit"], c.unit, c.min, c.max)
		}
	}
}
