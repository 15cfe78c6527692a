//go:build !nogpio

package all

import (
	_ "github.com/edgegw/gateway/drivers/gpio"
	_ "github.com/edgegw/gateway/drivers/i2c"
)
