package mqttbroker

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// InternalUsername is the user the gateway's own driver connects as.
const InternalUsername = "edgegw-internal"

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
	DefaultListen        = "127.0.0.1:1883"
	DefaultMaxQueued     = 10000
	DefaultMaxPacketSize = 256 << 10
)

// ConfigError is one invalid setting; Path is its place in the YAML, e.g.
// "users[2].publish[0]".
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

// withDefaults fills zero fields. The YAML decoder may start from a zero
// Config, so New applies this too.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.AllowAnonymous && len(c.Anonymous.Publish)+len(c.Anonymous.Subscribe) == 0 {
		c.Anonymous.Publish = []string{"#"}
	}
	return c
}

// Validate checks c (with defaults for zero fields) without I/O. It returns
// nil or the errors.Join of *ConfigError values.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
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
	if c.MaxPacketSize < 1024 || c.MaxPacketSize > 256<<20 {
		add("max_packet_size", "%d is outside [1024, %d]", c.MaxPacketSize, 256<<20)
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
		case u.Username == InternalUsername:
			add(path+".username", "%q is reserved for the gateway", u.Username)
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
	return errors.Join(errs...)
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
