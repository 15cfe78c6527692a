package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// device is one simulated scanner or sensor.
type device struct {
	kind  string // "scanner" or "sensor"
	site  string
	dock  int
	id    string
	n     uint64 // per-device counter, carried in every payload ("n") so order can be checked
	rng   *rand.Rand
	phase float64
	// missort is the fraction of the scanner's scans whose route belongs
	// to another of docks docks (a package at the wrong door).
	missort float64
	docks   int
}

// route is the route of the next scan: "R<dock>" for the scanner's own
// dock, another dock's for a mis-sort.
func (d *device) route() string {
	if d.docks > 1 && d.rng.Float64() < d.missort {
		other := 1 + d.rng.IntN(d.docks-1)
		if other >= d.dock {
			other++
		}
		return fmt.Sprintf("R%d", other)
	}
	return fmt.Sprintf("R%d", d.dock)
}

func (d *device) topic() string {
	if d.kind == "scanner" {
		return fmt.Sprintf("site/%s/dock%d/scanner/%s", d.site, d.dock, d.id)
	}
	return fmt.Sprintf("site/%s/sensor/%s", d.site, d.id)
}

type scanPayload struct {
	Barcode   string `json:"barcode"`
	Symbology string `json:"symbology"`
	Route     string `json:"route"`
	TS        string `json:"ts"`
	Device    string `json:"device"`
	N         uint64 `json:"n"`
}

type readingPayload struct {
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Metric string  `json:"metric"`
	TS     string  `json:"ts"`
	Device string  `json:"device"`
	N      uint64  `json:"n"`
}

// next returns the next payload of the device.
func (d *device) next(now time.Time) []byte {
	d.n++
	var v any
	if d.kind == "scanner" {
		v = scanPayload{Barcode: sscc(d.rng), Symbology: "GS1-128", Route: d.route(), TS: now.UTC().Format(time.RFC3339Nano), Device: d.id, N: d.n}
	} else {
		t := 4 + 3*math.Sin(d.phase+float64(d.n)/50) + d.rng.NormFloat64()*0.1
		v = readingPayload{Value: math.Round(t*100) / 100, Unit: "Cel", Metric: "temperature", TS: now.UTC().Format(time.RFC3339Nano), Device: d.id, N: d.n}
	}
	b, _ := json.Marshal(v)
	return b
}

// sscc returns a GS1-128 element string "(00)" + an 18-digit SSCC with a
// valid mod-10 check digit, as printed on pallet and parcel labels, without
// the parentheses: "00" + 18 digits.
func sscc(r *rand.Rand) string {
	digits := make([]byte, 17)
	digits[0] = byte('0' + r.IntN(10)) // extension digit
	prefix := "0614141"                // GS1 company prefix (example range)
	copy(digits[1:], prefix)
	for i := 1 + len(prefix); i < 17; i++ {
		digits[i] = byte('0' + r.IntN(10))
	}
	return "00" + string(digits) + string(rune('0'+checkDigit(digits)))
}

// checkDigit is the GS1 mod-10 check digit of digits.
func checkDigit(digits []byte) int {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10 - sum%10) % 10
}
