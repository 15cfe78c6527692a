// Package all links every driver into a binary; import it for its side
// effect of registering them.
package all

import (
	_ "github.com/edgegw/gateway/drivers/gpio"
	_ "github.com/edgegw/gateway/drivers/i2c"
	_ "github.com/edgegw/gateway/drivers/mqtt"
)
