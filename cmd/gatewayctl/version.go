package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the linker (-X main.version=... -X main.commit=...), as for the
// gateway: make build and make firmware stamp both binaries alike.
var (
	version = "dev"
	commit  = "unknown"
)

func init() { addCommand(newVersionCmd) }

func newVersionCmd(*app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, Go version and target",
		Args:  cobra.NoArgs,
		// No Cassandra, no output format: nothing to check.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintln(c.OutOrStdout(), versionLine())
		},
	}
}

func versionLine() string {
	return fmt.Sprintf("gatewayctl %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, buildArch())
}

// buildArch is GOARCH, with the ARM version for 32-bit ARM builds ("arm/v6").
func buildArch() string {
	if runtime.GOARCH == "arm" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					return "arm/v" + s.Value[:1]
				}
			}
		}
	}
	return runtime.GOARCH
}
