package main

import "runtime/debug"

// armVersion reports the GOARM the binary was built for ("6", "7"), read from
// the build settings.
func armVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "GOARM" {
			return s.Value
		}
	}
	return ""
}
