package i2c

import (
	"fmt"
	"regexp"
	"time"

	"github.com/edgegw/gateway/units"
)

var (
	busRe = regexp.MustCompile(`^[A-Za-z0-9/_.\-]{1,64}$`)
)

// Validate checks the config without I/O. It returns nil or units.Errors,
// one *units.FieldError per problem, its Path relative to the driver's
// section ("oversampling.pressure"; the gateway's config loader puts the
// source's path in front and finds the line).
func (c *Config) Validate() error {
	var errs units.Errors
	add := errs.Add
	if c.Bus != "" && !busRe.MatchString(c.Bus) {
		add("bus", "%q is not a bus name (e.g. 1, /dev/i2c-1, I2C1)", c.Bus)
	}
	if c.Address != 0x76 && c.Address != 0x77 {
		add("address", "%#x: a BME280/BMP280 answers at 0x76 or 0x77", c.Address)
	}
	if c.Sensor != SensorBME280 && c.Sensor != SensorBMP280 {
		add("sensor", "%q: want %s or %s", c.Sensor, SensorBME280, SensorBMP280)
	}
	if c.Interval.D() < MinInterval || c.Interval.D() > MaxInterval {
		add("interval", "%s is out of range %s..%s", c.Interval, MinInterval, fmtDur(MaxInterval))
	}
	switch {
	case c.Source == "":
		add("source", "required (the event source, e.g. dock3-climate)")
	case !units.ValidName(c.Source):
		add("source", "%q: %s", c.Source, units.NameRule)
	}
	if !units.ValidName(c.Stream) {
		add("stream", "%q: %s", c.Stream, units.NameRule)
	}
	for _, o := range []struct {
		path string
		n    int
	}{
		{"oversampling.temperature", c.Oversampling.Temperature},
		{"oversampling.pressure", c.Oversampling.Pressure},
		{"oversampling.humidity", c.Oversampling.Humidity},
	} {
		if _, ok := oversamplings[o.n]; !ok {
			add(o.path, "%d: want 0 (off), 1, 2, 4, 8 or 16", o.n)
		}
	}
	if c.Oversampling.Temperature == 0 {
		add("oversampling.temperature", "cannot be off: pressure and humidity need it")
	}
	if _, ok := filters[c.Filter]; !ok {
		add("filter", "%d: want 0 (off), 2, 4, 8 or 16", c.Filter)
	}
	if c.ReopenAfter < 1 || c.ReopenAfter > 100 {
		add("reopen_after", "%d is out of range 1..100", c.ReopenAfter)
	}
	return errs.Err()
}

// fmtDur prints whole hours as "1h" rather than "1h0m0s".
func fmtDur(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
