package all

import (
	_ "github.com/edgegw/gateway/drivers/mqtt"       // "mqtt": the site broker client
	_ "github.com/edgegw/gateway/drivers/mqttbroker" // "mqtt-embedded": the embedded broker's source
)
