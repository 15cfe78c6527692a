package mqttbroker

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/edgegw/gateway/units"
)

// Config of the embedded broker. Every field says its default.
type Config struct {
	// Listen is the address of the device listener. Default 127.0.0.1:1883.
	Listen string `yaml:"listen"`
	// TLS, when CertFile is set, makes the device listener TLS only.
	TLS TLSConfig `yaml:"tls"`
	// Users are the devices (and tools) allowed to connect.
	Users []User `yaml:"users"`
	// AllowAnonymous lets clients without a username connect. Default
	// false. They get the Anonymous ACL.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// Anonymous is the ACL of anonymous clients. Default when
	// AllowAnonymous: publish to everything, subscribe to nothing.
	Anonymous ACL `yaml:"anonymous"`
	// MaxQueued is how many QoS 1/2 messages the broker holds per client
	// (in flight or queued for an offline persistent session). Default
	// 10000, at most 65535. Beyond it new messages for that client are
	// dropped (and counted by the broker).
	MaxQueued int `yaml:"max_queued"`
	// MaxPacketSize in bytes; larger packets are refused. Default 256KiB.
	MaxPacketSize int `yaml:"max_packet_size"`
	// MaxInflight is how many publishes of one device the gateway holds
	// between receiving them and acking them after the commit (MQTT 5
	// devices are told it as Receive Maximum). Beyond it the broker stops
	// reading from that device until acks free room. Default 1024, at most
	// 65535.
	MaxInflight int `yaml:"max_inflight"`
	// MaxInflightBytes bounds the payload bytes all devices together have
	// between receipt and ack, the same way. Default 16MiB.
	MaxInflightBytes units.ByteSize `yaml:"max_inflight_bytes"`
	// ConnectTimeout is how long a new device connection has to finish its
	// TLS handshake (with TLS) and send its CONNECT packet, counted from
	// accept; a connection that has not done so by then is closed. After
	// CONNECT the client's keepalive (1.5 times it) takes over. Written
	// as a duration ("10s", "500ms"). Default 10s; from 100ms to 5m; it
	// cannot be turned off.
	ConnectTimeout units.Duration `yaml:"connect_timeout"`
	// MaxConnections caps the open connections of the device listener,
	// counting those still in their TLS handshake or CONNECT. A connection
	// beyond it is closed as soon as it is accepted, counted, and logged (one
	// line every few seconds with the count). The gateway's own loopback
	// listener is not counted. Default 2048 (room for 1,000 scanners plus as
	// many stale connections that have not yet timed out after a Wi-Fi
	// outage); from 1 to 1048576. Each connection costs a file descriptor,
	// so keep it below the process's open-files limit.
	MaxConnections int `yaml:"max_connections"`
	// PersistenceFile, when set, is a bbolt file that keeps sessions,
	// subscriptions, retained and in-flight messages across restarts.
	// Default: none (in memory).
	PersistenceFile string `yaml:"persistence_file"`
}

// TLSConfig names PEM files.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // when set, clients must present a certificate it signed
}

// ACL is what a user may do: topic filters ('+' and '#' allowed). In a
// filter, %u stands for the username and %c for the client ID (as in
// Mosquitto's acl_file patterns), so one rule can give each device its own
// topics: publish: [site/dock3/scanner/%c]. A username or client ID that
// holds '/', '+' or '#' never matches such a filter.
type ACL struct {
	Publish   []string `yaml:"publish"`   // topics it may publish to
	Subscribe []string `yaml:"subscribe"` // filters it may subscribe within
}

// User is one account. Exactly one of PasswordFile and PasswordHash.
type User struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // the password itself; trailing newlines trimmed
	PasswordHash string `yaml:"password_hash"` // from HashPassword: pbkdf2-sha256$<iter>$<salt>$<key>
	ACL          `yaml:",inline"`
}

// Defaults.
const (
	DefaultListen           = "127.0.0.1:1883"
	DefaultMaxQueued        = 10000
	DefaultMaxPacketSize    = 256 << 10
	DefaultMaxInflight      = 1024
	DefaultMaxInflightBytes = 16 << 20
	// DefaultConnectTimeout: a LAN device (even a slow scanner over TLS)
	// connects in well under a second; 10s also covers one at the edge of
	// Wi-Fi, while the idle sockets of a scan or an attack go quickly.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxConnections: see Config.MaxConnections.
	DefaultMaxConnections = 2048
)

// Bounds of ConnectTimeout and MaxConnections.
const (
	minConnectTimeout = 100 * time.Millisecond
	maxConnectTimeout = 5 * time.Minute
	maxMaxConnections = 1 << 20
)

// withDefaults fills zero fields. The YAML decoder may start from a zero
// Config, so New applies this too.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = units.Duration(DefaultConnectTimeout)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.AllowAnonymous && len(c.Anonymous.Publish)+len(c.Anonymous.Subscribe) == 0 {
		c.Anonymous.Publish = []string{"#"}
	}
	return c
}

// Validate checks c (with defaults for zero fields) without I/O. It returns
// nil or units.Errors, one *units.FieldError per problem, its Path relative
// to the broker: section ("users[2].publish[0]"; the gateway's config
// loader puts "broker." in front and finds the line).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs units.Errors
	add := errs.Add
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		add("listen", "want host:port, got %q", c.Listen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		add("tls.client_ca_file", "needs cert_file and key_file")
	}
	if c.MaxQueued < 1 || c.MaxQueued > 65535 {
		add("max_queued", "%d is outside [1, 65535]", c.MaxQueued)
	}
	if c.MaxInflight < 1 || c.MaxInflight > 65535 {
		add("max_inflight", "%d is outside [1, 65535]", c.MaxInflight)
	}
	if c.MaxInflightBytes < 64<<10 {
		add("max_inflight_bytes", "%v is below 64KiB", c.MaxInflightBytes)
	}
	if c.MaxPacketSize < 1024 || c.MaxPacketSize > 256<<20 {
		add("max_packet_size", "%d is outside [1024, %d]", c.MaxPacketSize, 256<<20)
	}
	if c.ConnectTimeout.D() < minConnectTimeout || c.ConnectTimeout.D() > maxConnectTimeout {
		add("connect_timeout", "%v is outside [%v, %v]", c.ConnectTimeout, minConnectTimeout, maxConnectTimeout)
	}
	if c.MaxConnections < 1 || c.MaxConnections > maxMaxConnections {
		add("max_connections", "%d is outside [1, %d]", c.MaxConnections, maxMaxConnections)
	}
	if !c.AllowAnonymous && len(c.Users) == 0 {
		add("users", "no users and allow_anonymous is false: nobody could connect")
	}
	checkACL := func(path string, a ACL) {
		for j, f := range a.Publish {
			if !validFilter(f) || strings.HasPrefix(f, "$") {
				add(fmt.Sprintf("%s.publish[%d]", path, j), "invalid topic filter %q", f)
			}
		}
		for j, f := range a.Subscribe {
			if !validFilter(f) {
				add(fmt.Sprintf("%s.subscribe[%d]", path, j), "invalid topic filter %q", f)
			}
		}
	}
	checkACL("anonymous", c.Anonymous)
	seen := map[string]int{}
	for i, u := range c.Users {
		path := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			add(path+".username", "required")
		default:
			if j, dup := seen[u.Username]; dup {
				add(path+".username", "%q is also users[%d]", u.Username, j)
			}
			seen[u.Username] = i
		}
		switch {
		case (u.PasswordFile == "") == (u.PasswordHash == ""):
			add(path, "set exactly one of password_file and password_hash")
		case u.PasswordHash != "":
			if _, err := parseHash(u.PasswordHash); err != nil {
				add(path+".password_hash", "%v", err)
			}
		}
		checkACL(path, u.ACL)
	}
	return errs.Err()
}

// validFilter: non-empty, '+' and '#' only as whole levels, '#' last.
func validFilter(f string) bool {
	if f == "" || strings.ContainsRune(f, 0) {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 {
			return false
		}
		if l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}
