package i2c

import (
	"time"

	"periph.io/x/devices/v3/bmxx80"

	"github.com/edgegw/gateway/units"
)

// Defaults and limits of the settings.
const (
	DefaultAddress     = 0x76
	DefaultSensor      = "bme280"
	DefaultInterval    = 10 * time.Second
	MinInterval        = 100 * time.Millisecond
	MaxInterval        = time.Hour
	DefaultStream      = "telemetry"
	DefaultReopenAfter = 3
)

// Sensors the driver knows.
const (
	SensorBME280 = "bme280" // temperature, humidity, pressure
	SensorBMP280 = "bmp280" // temperature, pressure
)

// Config is the "i2c" driver's section of a source. NewConfig sets every
// default; the YAML keys are the yaml tags.
type Config struct {
	// Simulate replaces the bus with an in-memory BME280 (or BMP280) whose
	// readings drift; for development without hardware. Default false.
	Simulate bool `yaml:"simulate"`
	// Bus as periph names it: "1", "/dev/i2c-1" or "I2C1". Default "": the
	// first bus of the host.
	Bus string `yaml:"bus"`
	// Address of the sensor: 0x76 (default) or 0x77, as its SDO pin sets it.
	Address uint16 `yaml:"address"`
	// Sensor is bme280 (default) or bmp280; the chip must match.
	Sensor string `yaml:"sensor"`
	// Interval between readings. Default 10s; 100ms..1h.
	Interval units.Duration `yaml:"interval"`
	// Source is the event source, e.g. "dock3-climate". Required.
	Source string `yaml:"source"`
	// Stream the readings go to. Default "telemetry".
	Stream string `yaml:"stream"`
	// Oversampling per quantity: 1, 2, 4, 8 or 16 samples, or 0 to skip
	// the quantity (not temperature, which the others need). Default 4.
	Oversampling Oversampling `yaml:"oversampling"`
	// Filter is the sensor's IIR filter coefficient: 0 (off, default), 2,
	// 4, 8 or 16. With a filter the sensor runs continuously (normal mode,
	// standby up to 1s) and each poll reads its latest filtered value.
	Filter int `yaml:"filter"`
	// ReopenAfter consecutive failed reads, the bus is closed and opened
	// again (and the sensor initialised again). Default 3; 1..100.
	ReopenAfter int `yaml:"reopen_after"`
}

// Oversampling is the number of samples per measurement.
type Oversampling struct {
	Temperature int `yaml:"temperature"`
	Pressure    int `yaml:"pressure"`
	Humidity    int `yaml:"humidity"` // BME280 only
}

// NewConfig returns a Config with every default set.
func NewConfig() *Config {
	return &Config{
		Address:      DefaultAddress,
		Sensor:       DefaultSensor,
		Interval:     units.Duration(DefaultInterval),
		Stream:       DefaultStream,
		Oversampling: Oversampling{Temperature: 4, Pressure: 4, Humidity: 4},
		ReopenAfter:  DefaultReopenAfter,
	}
}

// Streams lists the stream the driver emits to.
func (c *Config) Streams() []string { return []string{c.Stream} }

var oversamplings = map[int]bmxx80.Oversampling{
	0: bmxx80.Off, 1: bmxx80.O1x, 2: bmxx80.O2x, 4: bmxx80.O4x, 8: bmxx80.O8x, 16: bmxx80.O16x,
}

var filters = map[int]bmxx80.Filter{
	0: bmxx80.NoFilter, 2: bmxx80.F2, 4: bmxx80.F4, 8: bmxx80.F8, 16: bmxx80.F16,
}

// opts maps the config to the bmxx80 driver's options.
func (c *Config) opts() bmxx80.Opts {
	o := bmxx80.Opts{
		Temperature: oversamplings[c.Oversampling.Temperature],
		Pressure:    oversamplings[c.Oversampling.Pressure],
		Humidity:    oversamplings[c.Oversampling.Humidity],
		Filter:      filters[c.Filter],
	}
	if c.Sensor != SensorBME280 {
		o.Humidity = bmxx80.Off
	}
	if o.Filter != bmxx80.NoFilter {
		o.Standby = c.Interval.D() // bmxx80 picks the longest standby not above it
	}
	return o
}
