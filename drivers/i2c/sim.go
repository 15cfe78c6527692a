package i2c

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// simSensor is an in-memory BME280 (or BMP280): a register file that answers
// periph's bmxx80 driver as the chip does (chip ID at 0xD0, calibration at
// 0x88..0xA1 and 0xE1..0xE7, status at 0xF3, measurement at 0xF7..0xFE). Its
// calibration is the worked example of the BMP280 datasheet plus a plausible
// humidity set, and its raw readings drift a little at every read, so the
// real compensation code runs and yields about 25 °C, 1006 hPa and 50 %RH.
// It is a register file rather than an i2ctest.Playback so that it answers
// whatever oversampling and filter the config asks for.
type simSensor struct {
	addr uint16

	mu               sync.Mutex
	regs             [256]byte
	adcT, adcP, adcH float64
}

// simBus returns an opener whose bus holds one simulated sensor, the same
// across reopens.
func simBus(cfg *Config) openBus {
	s := &simSensor{addr: cfg.Address, adcT: 519888, adcP: 415148, adcH: 29000}
	s.regs[0xD0] = 0x60
	if cfg.Sensor == SensorBMP280 {
		s.regs[0xD0] = 0x58
	}
	le := binary.LittleEndian
	for i, v := range []int{27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000} {
		le.PutUint16(s.regs[0x88+2*i:], uint16(v)) // dig_T1..dig_P9, two's complement
	}
	s.regs[0xA1] = 75                                           // dig_H1
	le.PutUint16(s.regs[0xE1:], 362)                            // dig_H2
	s.regs[0xE3] = 0                                            // dig_H3
	s.regs[0xE4], s.regs[0xE5], s.regs[0xE6] = 0x13, 0x29, 0x03 // dig_H4 313, dig_H5 50
	s.regs[0xE7] = 30                                           // dig_H6
	return func(string) (i2c.BusCloser, error) { return s, nil }
}

func (s *simSensor) String() string { return "i2c-sim" }

func (s *simSensor) SetSpeed(physic.Frequency) error { return nil }

func (s *simSensor) Close() error { return nil }

// Tx implements i2c.Bus: a write of register/value pairs, or a write of a
// register address followed by a read from it on.
func (s *simSensor) Tx(addr uint16, w, r []byte) error {
	if addr != s.addr {
		return fmt.Errorf("i2c-sim: no device at %#x", addr)
	}
	if len(w) == 0 {
		return fmt.Errorf("i2c-sim: no register")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(r) == 0 {
		for i := 0; i+1 < len(w); i += 2 {
			s.regs[w[i]] = w[i+1]
		}
		return nil
	}
	reg := int(w[0])
	if reg == 0xF7 {
		s.measure()
	}
	if reg+len(r) > len(s.regs) {
		return fmt.Errorf("i2c-sim: read past 0xFF")
	}
	copy(r, s.regs[reg:])
	return nil
}

// measure lets the raw values drift (within bounds) and stores them as the
// chip lays them out: 20-bit pressure and temperature, 16-bit humidity.
func (s *simSensor) measure() {
	walk := func(v, step, lo, hi float64) float64 {
		return min(hi, max(lo, v+rand.NormFloat64()*step))
	}
	s.adcT = walk(s.adcT, 150, 500000, 540000)
	s.adcP = walk(s.adcP, 40, 410000, 420000)
	s.adcH = walk(s.adcH, 60, 26000, 32000)
	p, t, h := uint32(s.adcP), uint32(s.adcT), uint32(s.adcH)
	copy(s.regs[0xF7:], []byte{
		byte(p >> 12), byte(p >> 4), byte(p << 4),
		byte(t >> 12), byte(t >> 4), byte(t << 4),
		byte(h >> 8), byte(h),
	})
}
