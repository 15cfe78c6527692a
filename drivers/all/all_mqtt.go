package all

import (
	_ "github.com/edgegw/gateway/drivers/mqtt"
)
