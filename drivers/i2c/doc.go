// Package i2c is the "i2c" input driver: it polls a Bosch BME280 (or
// BMP280) environmental sensor on an I²C bus through periph.io's bmxx80
// driver and emits its readings.
//
// Each poll (one at start, then every interval on a fixed grid) takes one
// forced-mode measurement and emits one "reading" event per quantity, all
// with the poll's time, which is what the sink's readings-by-(gateway,
// source, day) table stores (its value and unit columns come from the
// attributes of the same names):
//
//	metric        value (float)                  unit
//	temperature   °C, 2 decimals                 "Cel"
//	humidity      %RH, 3 decimals (BME280 only)  "%RH"
//	pressure      hPa, 4 decimals                "hPa"
//	plus sensor ("bme280" or "bmp280"), and dropped (int) on the first
//	reading after the sink refused readings for so long that some were lost.
//
// A quantity whose oversampling is 0 is not measured and not reported.
//
// A failed read is counted (Stats.ReadErrors), logged at most once a minute,
// and retried after 0.5s, 1s, 2s … (up to the larger of the interval and
// 30s); after reopen_after failures in a row the bus is closed and opened
// again and the sensor re-initialised. Only the first open can fail Run
// (a *BusNotFoundError when the host has no such bus, or the chip's error):
// the gateway decides whether to retry. Readings the sink refuses
// (drivers.ErrFull or another error) are held, up to 64 events, and retried
// with backoff (100ms..5s) while polling goes on.
//
// Config (under the source's "i2c" key; every key but source has a default):
//
//	simulate: false          # true: an in-memory BME280 whose readings drift
//	bus: "1"                 # "1", "/dev/i2c-1" or "I2C1"; default "" = first bus
//	address: 0x76            # 0x76 (default) or 0x77
//	sensor: bme280           # bme280 (default) | bmp280
//	interval: 10s            # 100ms..1h
//	source: dock3-climate    # required
//	stream: telemetry        # default
//	oversampling: {temperature: 4, pressure: 4, humidity: 4}  # 0 (off), 1, 2, 4, 8, 16
//	filter: 0                # IIR coefficient 0 (off), 2, 4, 8, 16
//	reopen_after: 3          # 1..100
//
// The bus is reached through a factory (openBus) so that tests hand in
// periph's i2ctest.Playback of recorded transactions and the real bmxx80
// code runs on it; time comes from an injected clock.
package i2c
