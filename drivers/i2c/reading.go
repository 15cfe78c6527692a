package i2c

import (
	"math"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"

	"github.com/edgegw/gateway/event"
)

// Units of the readings (UCUM codes, "%RH" aside).
const (
	UnitTemperature = "Cel" // degree Celsius
	UnitHumidity    = "%RH" // percent relative humidity
	UnitPressure    = "hPa" // hectopascal
)

// readings turns one measurement into one "reading" event per quantity:
// attrs metric, value (float), unit, sensor. Quantities whose oversampling
// is off, and humidity on a BMP280, are left out.
func (d *Driver) readings(env *physic.Env, t time.Time) []*event.Event {
	o := d.cfg.opts()
	out := []*event.Event{d.reading(t, "temperature", round(float64(env.Temperature-physic.ZeroCelsius)/float64(physic.Celsius), 2), UnitTemperature)}
	if o.Humidity != bmxx80.Off {
		out = append(out, d.reading(t, "humidity", round(float64(env.Humidity)/float64(physic.PercentRH), 3), UnitHumidity))
	}
	if o.Pressure != bmxx80.Off {
		out = append(out, d.reading(t, "pressure", round(float64(env.Pressure)/float64(100*physic.Pascal), 4), UnitPressure))
	}
	return out
}

func (d *Driver) reading(t time.Time, metric string, value float64, unit string) *event.Event {
	return &event.Event{
		Stream: d.cfg.Stream, Source: d.cfg.Source, Kind: event.KindReading, Time: t,
		Attrs: map[string]any{"metric": metric, "value": value, "unit": unit, "sensor": d.cfg.Sensor},
	}
}

// round keeps n decimals: the sensor's resolution (0.01 °C, 1/1024 %RH,
// 1/256 Pa) without the binary noise of the unit conversion.
func round(v float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(v*p) / p
}
