// Package mqttbroker is the gateway's embedded MQTT broker (mochi-mqtt), for
// installs where scanners connect straight to the gateway (small sites,
// vehicles) instead of to a site Mosquitto.
//
// Authentication is on by default: every device is a User with a password
// (a file holding it, or a PBKDF2 hash made by HashPassword) and topic ACLs:
// it may publish only to its Publish filters and subscribe only within its
// Subscribe filters (where %u stands for the username and %c for the client
// ID). Anonymous clients are refused unless AllowAnonymous is set. A client
// ID whose session (online, or persistent and offline) belongs to one user
// cannot be taken over by another user: the connection is refused, so a
// device cannot kick another off or inherit its queued messages. The gateway's own MQTT driver connects over a second, loopback-only
// listener as an internal user whose password is generated at New and never
// leaves the process: after Start, wire the driver with InternalURL and
// InternalCredentials. That user may subscribe to everything and publish
// nothing, and is refused on the main listener.
//
// New checks the config and reads the password and TLS files but starts
// nothing; Start binds the listeners and serves until Close or until its
// context ends; Close is idempotent.
//
// Example YAML:
//
//	listen: 0.0.0.0:1883
//	tls: {cert_file: broker.crt, key_file: broker.key}   # optional
//	max_queued: 10000
//	persistence_file: /var/lib/edgegw/broker.db          # optional
//	users:
//	  - username: dock3-scanner
//	    password_file: /etc/edgegw/users/dock3-scanner
//	    publish: [site/dock3/scanner/+]
//	  - username: dash
//	    password_hash: pbkdf2-sha256$100000$c2FsdA$...
//	    subscribe: [site/#]
package mqttbroker
