//go:build nogpio

package all

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
)

func init() {
	for _, name := range []string{"gpio", "i2c"} {
		drivers.Register(name, drivers.Registration{
			NewConfig: func() any { return &absent{driver: name} },
			New: func(any, drivers.Env) (drivers.Driver, error) {
				return nil, absentError(name)
			},
		})
	}
}

// absent is the config of a driver this build leaves out. It accepts any
// settings (so that the one error reported is the missing driver, not its
// fields) and never validates.
type absent struct{ driver string }

func (*absent) UnmarshalYAML(*yaml.Node) error { return nil }

func (a *absent) Validate() error { return absentError(a.driver) }

func absentError(driver string) error {
	return fmt.Errorf("this build has no %s driver (built with -tags nogpio)", driver)
}
