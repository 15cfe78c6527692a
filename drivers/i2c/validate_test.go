package i2c

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/units"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(c *Config)
		paths []string // the Path of each error, in order; none: valid
	}{
		{"defaults and a source", func(c *Config) {}, nil},
		{"bus forms", func(c *Config) { c.Bus = "/dev/i2c-1" }, nil},
		{"bus alias", func(c *Config) { c.Bus = "I2C1" }, nil},
		{"bmp280 at 0x77", func(c *Config) { c.Sensor, c.Address = SensorBMP280, 0x77 }, nil},
		{"interval bounds", func(c *Config) { c.Interval = units.Duration(MinInterval) }, nil},
		{"no source", func(c *Config) { c.Source = "" }, []string{"source"}},
		{"bad source", func(c *Config) { c.Source = "dock 3" }, []string{"source"}},
		{"bad stream", func(c *Config) { c.Stream = "" }, []string{"stream"}},
		{"bad bus", func(c *Config) { c.Bus = "bus one" }, []string{"bus"}},
		{"bad address", func(c *Config) { c.Address = 0x40 }, []string{"address"}},
		{"unknown sensor", func(c *Config) { c.Sensor = "sht31" }, []string{"sensor"}},
		{"interval too short", func(c *Config) { c.Interval = units.Duration(50 * time.Millisecond) }, []string{"interval"}},
		{"interval too long", func(c *Config) { c.Interval = units.Duration(2 * time.Hour) }, []string{"interval"}},
		{"oversampling values", func(c *Config) { c.Oversampling = Oversampling{Temperature: 3, Pressure: 32, Humidity: 0} },
			[]string{"oversampling.temperature", "oversampling.pressure"}},
		{"temperature off", func(c *Config) { c.Oversampling.Temperature = 0 }, []string{"oversampling.temperature"}},
		{"filter", func(c *Config) { c.Filter = 3 }, []string{"filter"}},
		{"reopen_after", func(c *Config) { c.ReopenAfter = 0 }, []string{"reopen_after"}},
		{"several", func(c *Config) { c.Address, c.Sensor, c.Interval = 0, "", 0 }, []string{"address", "sensor", "interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(c)
			err := c.Validate()
			var paths []string
			if err != nil {
				var es units.Errors
				if !errors.As(err, &es) {
					t.Fatalf("error %T %v is not units.Errors", err, err)
				}
				for _, e := range es {
					if e.Line != 0 || e.Error() != e.Path+": "+e.Msg {
						t.Errorf("error %q: want %q and no line (the loader locates it)", e, e.Path+": "+e.Msg)
					}
					paths = append(paths, e.Path)
				}
			}
			if !slices.Equal(paths, tt.paths) {
				t.Fatalf("paths %q, want %q (err: %v)", paths, tt.paths, err)
			}
		})
	}
}

// TestRegistered decodes a config the way the config loader does (yaml.v3
// into NewConfig's value): hex addresses work and unset keys keep their
// defaults, nested ones included.
func TestRegistered(t *testing.T) {
	reg, ok := drivers.Lookup("i2c")
	if !ok {
		t.Fatal(`"i2c" is not registered`)
	}
	cfg := reg.NewConfig()
	doc := `
bus: "1"
address: 0x77
source: dock3-climate
interval: 30s
oversampling: {pressure: 16}
`
	if err := yaml.Unmarshal([]byte(doc), cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*Config)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Address != 0x77 || c.Interval.D() != 30*time.Second || c.Sensor != SensorBME280 || c.Stream != "telemetry" ||
		c.Oversampling != (Oversampling{Temperature: 4, Pressure: 16, Humidity: 4}) || c.ReopenAfter != 3 {
		t.Fatalf("decoded %+v", c)
	}
	if got := c.Streams(); !slices.Equal(got, []string{"telemetry"}) {
		t.Fatalf("Streams() = %q", got)
	}
	if _, err := reg.New(cfg, drivers.Env{}); err != nil {
		t.Fatal(err)
	}
}

// The interval takes the syntax of every config ("1h30m" is over the 1h
// limit, reported with the value as written).
func TestIntervalSyntax(t *testing.T) {
	c := testConfig()
	if err := yaml.Unmarshal([]byte("interval: 1h30m\n"), c); err != nil {
		t.Fatal(err)
	}
	if c.Interval.D() != 90*time.Minute {
		t.Fatalf("interval = %v", c.Interval)
	}
	var es units.Errors
	if err := c.Validate(); !errors.As(err, &es) || len(es) != 1 || *es[0] != (units.FieldError{Path: "interval", Msg: "1h30m0s is out of range 100ms..1h"}) {
		t.Fatalf("err = %v", err)
	}
	if err := yaml.Unmarshal([]byte("interval: 1d\n"), c); err != nil || c.Interval.D() != 24*time.Hour {
		t.Fatalf("interval 1d = %v, %v", c.Interval, err)
	}
}
