package units

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, s := range []string{"dock-7", "a", "A.b_c-9", "7", strings.Repeat("x", 64)} {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "-dock", ".x", "_x", "dock 7", "dock/7", "dock:7", "dock7\n", "docké", strings.Repeat("x", 65)} {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true, want false", s)
		}
	}
}
