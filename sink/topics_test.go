package sink

import (
	"regexp"
	"strings"
	"testing"
)

// clientMatch mimics pulsar-client-go's regex consumer: it compiles the
// pattern from the namespace on and matches it, unanchored, against full
// topic names.
func clientMatch(t *testing.T, pattern, topic string) bool {
	t.Helper()
	i := strings.Index(pattern, "://")
	re, err := regexp.Compile(pattern[i+3:])
	if err != nil {
		t.Fatalf("pattern %q does not compile: %v", pattern, err)
	}
	return re.MatchString(topic)
}

func TestTopicsPatternExcludesDeadLetter(t *testing.T) {
	p := DefaultConfig().Pulsar
	p.Tenant, p.Namespace = "acme", "ns1"
	pat, err := p.topicsPattern()
	if err != nil {
		t.Fatal(err)
	}
	in := []string{"events-scans", "events-telemetry", "events-", "events-d", "events-dl", "events-dlqx",
		"events-dlq2", "events-xdlq", "events-DLQ"}
	out := []string{"events-dlq", "config", "status", "eventsscans", "x-events-scans"}
	for _, n := range in {
		if !clientMatch(t, pat, "persistent://acme/ns1/"+n) {
			t.Errorf("%s not matched by %s", n, pat)
		}
	}
	for _, n := range out {
		if clientMatch(t, pat, "persistent://acme/ns1/"+n) {
			t.Errorf("%s matched by %s", n, pat)
		}
	}
}

func TestTopicsPatternOther(t *testing.T) {
	p := DefaultConfig().Pulsar
	p.Topics.Pattern = "events-(scans|telemetry)"
	pat, err := p.topicsPattern()
	if err != nil {
		t.Fatal(err)
	}
	if !clientMatch(t, pat, "persistent://public/default/events-scans") ||
		clientMatch(t, pat, "persistent://public/default/events-scans2") ||
		clientMatch(t, pat, "persistent://public/default/events-dlq") {
		t.Errorf("pattern %s matches wrongly", pat)
	}
	// A dead-letter topic elsewhere needs no exclusion.
	p.Topics.Pattern = "events-.*"
	p.DeadLetterTopic = "persistent://public/dead/events-dlq"
	if pat, err = p.topicsPattern(); err != nil || pat != "persistent://public/default/(?:events-.*)$" {
		t.Errorf("pattern = %q, %v", pat, err)
	}
	// A literal prefix and .* gets the exclusion; any other pattern that
	// covers the dead-letter topic is refused.
	p.DeadLetterTopic = ""
	p.Topics.Pattern = "ev.*"
	if pat, err = p.topicsPattern(); err != nil || !clientMatch(t, pat, "persistent://public/default/events-a") ||
		clientMatch(t, pat, "persistent://public/default/events-dlq") {
		t.Errorf("pattern = %q, %v", pat, err)
	}
	p.Topics.Pattern = "e.*-.*"
	if _, err := p.topicsPattern(); err == nil {
		t.Error("pattern covering the dead-letter topic accepted")
	}
}

func TestNotEqual(t *testing.T) {
	for _, s := range []string{"dlq", "a", "", "x.y", "a]b", "é^"} {
		re := regexp.MustCompile(`^` + notEqual(s) + `$`)
		for _, c := range []string{"", "a", "dl", "dlq", "dlqq", "x.y", "xzy", "a]b", "a]", "é", "é^", "é^x", "zzz"} {
			if got, want := re.MatchString(c), c != s; got != want {
				t.Errorf("notEqual(%q) on %q = %v, want %v", s, c, got, want)
			}
		}
	}
}
