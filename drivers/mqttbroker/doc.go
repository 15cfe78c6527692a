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
// device cannot kick another off or inherit its queued messages.
//
// The broker is the gateway's ingest point, not a relay to a client of its
// own. Its sources are this package's Source, registered as the driver
// "mqtt-embedded" (`driver: mqtt` with `brokers: [embedded]` is an alias):
// a Source Attaches its topic filters (Broker implements drivers.Inbox) and
// maps and batches what it gets with package ingest, as the site broker
// client (drivers/mqtt) does. A device's publish on such a topic is
// handed to the source and acknowledged (PUBACK for QoS 1, PUBREC for QoS
// 2) only after the commit that holds it is on disk. A device may keep many
// publishes in flight; their acks go out in the order it sent them. While
// the gateway cannot take them (a full stream, the disk budget spent, a
// full disk) MQTT 5 devices get PUBACK reason 0x97 (quota exceeded) and
// 3.1.1 devices get no ack: they keep the message and the broker stops
// reading from them once MaxInflight of theirs are waiting, so memory stays
// bounded (also by MaxInflightBytes over all devices). A QoS 1/2 publish
// to $SYS/… is refused (0x90 to MQTT 5, a disconnect to 3.1.1) rather than
// left unanswered. Publishes on topics no source attached, and QoS 0
// publishes, are ordinary broker messages.
//
// The device listener guards against idle and excess sockets: a connection
// must finish its TLS handshake and send CONNECT within ConnectTimeout
// (default 10s) of being accepted or it is closed, and at most
// MaxConnections (default 2048) connections are open at once; one more is
// closed as soon as it is accepted, and the refusals are logged as a count
// at most every few seconds. No log line carries a packet: the logger given
// to mochi drops packet attributes (a CONNECT's password, a payload).
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
//	connect_timeout: 10s      # TLS handshake + CONNECT, from accept
//	max_connections: 2048     # open device connections at once
//	persistence_file: /var/lib/edgegw/broker.db          # optional
//	users:
//	  - username: dock3-scanner
//	    password_file: /etc/edgegw/users/dock3-scanner
//	    publish: [site/dock3/scanner/+]
//	  - username: dash
//	    password_hash: pbkdf2-sha256$100000$c2FsdA$...
//	    subscribe: [site/#]
package mqttbroker
