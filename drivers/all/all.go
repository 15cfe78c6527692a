// Package all links every driver into a binary; import it for its side
// effect of registering them.
package all

import (
	_ "github.com/edgegw/gateway/drivers/mqtt"
)
