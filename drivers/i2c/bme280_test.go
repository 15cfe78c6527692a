package i2c

import (
	"encoding/binary"
	"math"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// This file builds the bus traffic of a BME280/BMP280 from the datasheet
// (BME280 DS002 §4.2.2 and §5; BMP280 DS001 §3.11) and computes the
// expected readings with the datasheet's double-precision compensation
// (appendix 8.1), independently of periph's integer implementation that
// the driver runs.

// calib holds the trimming parameters, named as in the datasheet.
type calib struct {
	T1                             uint16
	T2, T3                         int16
	P1                             uint16
	P2, P3, P4, P5, P6, P7, P8, P9 int16
	H1                             uint8
	H2                             int16
	H3                             uint8
	H4, H5                         int16 // 12 bits each
	H6                             int8
}

// example is the worked example of the BMP280 datasheet (§3.12) for
// temperature and pressure, and a plausible humidity set (H4 and H5 with
// non-zero low nibbles, so that their packing into 0xE4..0xE6 is tested).
var example = calib{
	T1: 27504, T2: 26435, T3: -1000,
	P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
	H1: 75, H2: 362, H3: 0, H4: 313, H5: 50, H6: 30,
}

// regs88 is the content of 0x88..0xA1: twelve little-endian words dig_T1 ..
// dig_P9, 0xA0 unused, 0xA1 dig_H1.
func (c calib) regs88() []byte {
	b := make([]byte, 0xA2-0x88)
	words := []uint16{c.T1, uint16(c.T2), uint16(c.T3), c.P1, uint16(c.P2), uint16(c.P3), uint16(c.P4),
		uint16(c.P5), uint16(c.P6), uint16(c.P7), uint16(c.P8), uint16(c.P9)}
	for i, w := range words {
		binary.LittleEndian.PutUint16(b[2*i:], w)
	}
	b[0xA1-0x88] = c.H1
	return b
}

// regsE1 is the content of 0xE1..0xE7: dig_H2 (LSB, MSB), dig_H3,
// 0xE4 = dig_H4[11:4], 0xE5 = dig_H5[3:0]<<4 | dig_H4[3:0],
// 0xE6 = dig_H5[11:4], dig_H6.
func (c calib) regsE1() []byte {
	return []byte{
		byte(c.H2), byte(uint16(c.H2) >> 8), c.H3,
		byte(c.H4 >> 4), byte(c.H5&0xF)<<4 | byte(c.H4&0xF), byte(c.H5 >> 4),
		byte(c.H6),
	}
}

// measRegs is the content of 0xF7..0xFE: press_msb/lsb/xlsb[7:4],
// temp_msb/lsb/xlsb[7:4], hum_msb/lsb.
func measRegs(adcP, adcT, adcH uint32) []byte {
	return []byte{
		byte(adcP >> 12), byte(adcP >> 4), byte(adcP&0xF) << 4,
		byte(adcT >> 12), byte(adcT >> 4), byte(adcT&0xF) << 4,
		byte(adcH >> 8), byte(adcH),
	}
}

// compensate applies the datasheet's double-precision formulas; it returns
// °C, Pa and %RH.
func (c calib) compensate(adcT, adcP, adcH int32) (tC, pPa, hRH float64) {
	T, P, H := float64(adcT), float64(adcP), float64(adcH)
	v1 := (T/16384.0 - float64(c.T1)/1024.0) * float64(c.T2)
	v2 := (T/131072.0 - float64(c.T1)/8192.0) * (T/131072.0 - float64(c.T1)/8192.0) * float64(c.T3)
	tFine := float64(int32(v1 + v2))
	tC = (v1 + v2) / 5120.0

	v1 = tFine/2.0 - 64000.0
	v2 = v1 * v1 * float64(c.P6) / 32768.0
	v2 += v1 * float64(c.P5) * 2.0
	v2 = v2/4.0 + float64(c.P4)*65536.0
	v1 = (float64(c.P3)*v1*v1/524288.0 + float64(c.P2)*v1) / 524288.0
	v1 = (1.0 + v1/32768.0) * float64(c.P1)
	if v1 != 0 {
		p := 1048576.0 - P
		p = (p - v2/4096.0) * 6250.0 / v1
		v1 = float64(c.P9) * p * p / 2147483648.0
		v2 = p * float64(c.P8) / 32768.0
		pPa = p + (v1+v2+float64(c.P7))/16.0
	}

	h := tFine - 76800.0
	h = (H - (float64(c.H4)*64.0 + float64(c.H5)/16384.0*h)) *
		(float64(c.H2) / 65536.0 * (1.0 + float64(c.H6)/67108864.0*h*(1.0+float64(c.H3)/67108864.0*h)))
	h *= 1.0 - float64(c.H1)*h/524288.0
	hRH = min(100, max(0, h))
	return tC, pPa, hRH
}

// TestDatasheetExample checks compensate against the numbers the BMP280
// datasheet gives for its example: 25.08 °C and 100653.27 Pa (the table
// carries t_fine unrounded; the formula truncates it, which moves p by
// 0.01 Pa).
func TestDatasheetExample(t *testing.T) {
	tC, pPa, _ := example.compensate(519888, 415148, 0)
	if math.Abs(tC-25.08) > 0.005 || math.Abs(pPa-100653.27) > 0.02 {
		t.Fatalf("compensate = %.4f °C, %.4f Pa; the datasheet says 25.08 °C, 100653.27 Pa", tC, pPa)
	}
}

// Register fields of ctrl_meas (0xF4), ctrl_hum (0xF2) and config (0xF5).
func ctrlMeas(osrsT, osrsP, mode byte) byte { return osrsT<<5 | osrsP<<2 | mode }
func config(tSB, filter byte) byte          { return tSB<<5 | filter<<2 }

// osrs is the register code of an oversampling: 1x=1, 2x=2, 4x=3, 8x=4, 16x=5.
func osrs(n int) byte {
	return map[int]byte{0: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5}[n]
}

const (
	modeSleep  = 0
	modeForced = 1
	tSB1000ms  = 5 // standby 1000 ms
)

// initOps is what a driver does to start a sensor in forced mode: read the
// chip ID, the calibration, then write the configuration (ctrl_meas to
// sleep first, ctrl_hum, config, and ctrl_meas last, as §5.4.3 requires).
func initOps(addr uint16, chipID byte, c calib, o Oversampling) []i2ctest.IO {
	ops := []i2ctest.IO{
		{Addr: addr, W: []byte{0xD0}, R: []byte{chipID}},
		{Addr: addr, W: []byte{0x88}, R: c.regs88()},
	}
	meas := ctrlMeas(osrs(o.Temperature), osrs(o.Pressure), modeSleep)
	if chipID == 0x60 {
		ops = append(ops,
			i2ctest.IO{Addr: addr, W: []byte{0xE1}, R: c.regsE1()},
			i2ctest.IO{Addr: addr, W: []byte{0xF4, meas, 0xF2, osrs(o.Humidity), 0xF5, config(tSB1000ms, 0), 0xF4, meas}})
	} else {
		ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0xF4, meas, 0xF5, config(tSB1000ms, 0), 0xF4, meas}})
	}
	return ops
}

// senseOps is one forced measurement: start it, poll status (bit 3,
// measuring) until clear, read the data registers in one burst.
func senseOps(addr uint16, bme bool, o Oversampling, adcP, adcT, adcH uint32) []i2ctest.IO {
	data := measRegs(adcP, adcT, adcH)
	if !bme {
		data = data[:6]
	}
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0xF4, ctrlMeas(osrs(o.Temperature), osrs(o.Pressure), modeForced)}},
		{Addr: addr, W: []byte{0xF3}, R: []byte{0x08}}, // measuring
		{Addr: addr, W: []byte{0xF3}, R: []byte{0x00}}, // done
		{Addr: addr, W: []byte{0xF7}, R: data},
	}
}
