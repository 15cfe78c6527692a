package drivers

import (
	"context"
	"strings"
	"testing"
)

type testConfig struct{ Pin int }

type testDriver struct{ cfg *testConfig }

func (testDriver) Run(context.Context, Sink) error { return nil }

func TestRegisterConfig(t *testing.T) {
	RegisterConfig("registerconfig-test", func() *testConfig { return &testConfig{Pin: 7} },
		func(c *testConfig, _ Env) (Driver, error) { return testDriver{c}, nil })
	r, ok := Lookup("registerconfig-test")
	if !ok {
		t.Fatal("not registered")
	}
	cfg := r.NewConfig()
	if c, ok := cfg.(*testConfig); !ok || c.Pin != 7 {
		t.Fatalf("NewConfig = %#v, want the default *testConfig", cfg)
	}
	d, err := r.New(cfg, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.(testDriver).cfg; got != cfg {
		t.Fatalf("the driver got %p, want the config NewConfig made (%p)", got, cfg)
	}
	if _, err := r.New(&struct{}{}, Env{}); err == nil || !strings.Contains(err.Error(), "registerconfig-test: config is *struct {}, want *drivers.testConfig") {
		t.Fatalf("New with a foreign config: %v", err)
	}
}
