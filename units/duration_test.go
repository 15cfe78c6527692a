package units

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "250ms": 250 * time.Millisecond, "30s": 30 * time.Second, "1h30m": 90 * time.Minute, "168h": 168 * time.Hour,
		"7d": 7 * Day, "90d": 90 * Day, " 1d ": Day, "1d12h": 36 * time.Hour, "0d": 0, "2d30m15s": 2*Day + 30*time.Minute + 15*time.Second,
		"-5s": -5 * time.Second, "106751d": 106751 * Day,
	} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1d", "+1d", "1d-5h", "1dd", "1d2d", "3 weeks", "30", "7 d", "106752d", "106751d24h", "1w"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	if _, err := ParseDuration("a week"); err == nil || err.Error() != `"a week" is not a duration (use e.g. 500ms, 30s, 1h30m, 90d)` {
		t.Errorf("error %v", err)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 48 * time.Hour: "2d", 36 * time.Hour: "36h0m0s", 1500 * time.Millisecond: "1.5s", -48 * time.Hour: "-48h0m0s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(Duration(d).String()); err != nil || back.D() != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", Duration(d).String(), back, err, d)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		Age  Duration `yaml:"age"`
		Wait Duration `yaml:"wait"`
		N    int      `yaml:"n"`
	}
	if err := yaml.Unmarshal([]byte("age: 90d\nwait: 1h30m\n"), &v); err != nil || v.Age.D() != 90*Day || v.Wait.D() != 90*time.Minute {
		t.Fatalf("got %v %v, %v", v.Age, v.Wait, err)
	}
	// A bad value is a *yaml.TypeError naming its line, and the decoder
	// goes on with the rest of the document.
	err := yaml.Unmarshal([]byte("\nage: soon\nwait: [1]\nn: 3\n"), &v)
	var te *yaml.TypeError
	if !asTypeError(err, &te) || len(te.Errors) != 2 ||
		te.Errors[0] != `line 2: "soon" is not a duration (use e.g. 500ms, 30s, 1h30m, 90d)` ||
		te.Errors[1] != "line 3: want a duration (e.g. 500ms, 30s, 1h30m, 90d), got a sequence" || v.N != 3 {
		t.Fatalf("error %#v, n %d", err, v.N)
	}
	out, err := yaml.Marshal(struct {
		Age Duration `yaml:"age"`
	}{Duration(7 * Day)})
	if err != nil || strings.TrimSpace(string(out)) != "age: 7d" {
		t.Fatalf("marshal: %q, %v", out, err)
	}
}

func asTypeError(err error, te **yaml.TypeError) bool {
	t, ok := err.(*yaml.TypeError)
	*te = t
	return ok
}
