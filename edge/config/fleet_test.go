package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFleetSection(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Fleet, DefaultFleet()) || c.Fleet.Probation.D() != time.Minute || c.Fleet.Heartbeat.D() != 10*time.Second {
		t.Fatalf("defaults %+v", c.Fleet)
	}
	c, err = Parse([]byte(good + "fleet:\n  probation: 5s\n  heartbeat: 0s\n  config_topic: cfg\n"))
	if err != nil || c.Fleet.Probation.D() != 5*time.Second || c.Fleet.Heartbeat != 0 || c.Fleet.ConfigTopic != "cfg" || c.Fleet.StatusTopic != "status" {
		t.Fatalf("%+v %v", c.Fleet, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"fleet:\n  probation: 100ms\n", "fleet.probation: must be between 1s and 1h"},
		{"fleet:\n  heartbeat: 1ms\n", "fleet.heartbeat: must be 0 (off)"},
		{"fleet:\n  config_topic: a/b\n", `fleet.config_topic: "a/b"`},
		{"fleet:\n  status_topic: config\n", "fleet.status_topic: must differ"},
		{"fleet:\n  probaton: 5s\n", `line 26: fleet.probaton: unknown field "probaton"`},
	} {
		if _, err := Parse([]byte(good + tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParseWithPreset(t *testing.T) {
	doc := strings.Replace(good, "  id: dock-gw-01\n", "", 1)
	if _, err := Parse([]byte(doc)); err == nil {
		t.Fatal("a document without gateway.id parsed")
	}
	c, err := ParseWith([]byte(doc), func(c *Config) { c.Gateway.ID, c.Gateway.Groups = "preset", []string{"x"} })
	if err != nil {
		t.Fatal(err)
	}
	// The preset fills what the document leaves out; what it sets wins.
	if c.Gateway.ID != "preset" || len(c.Gateway.Groups) != 1 || c.Gateway.Groups[0] != "east" {
		t.Fatalf("gateway %+v", c.Gateway)
	}
}
