package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqttbroker"
	"github.com/edgegw/gateway/uplink"
)

// Config is the whole gateway configuration file.
type Config struct {
	Gateway Gateway  `yaml:"gateway"`
	Buffer  Buffer   `yaml:"buffer"`
	Streams []Stream `yaml:"streams"`
	Sources []Source `yaml:"sources"`
	// Broker is the embedded MQTT broker; off when absent.
	Broker *mqttbroker.Config `yaml:"broker"`
	// Uplink is the Pulsar connection.
	Uplink uplink.Options `yaml:"uplink"`
	HTTP   HTTP           `yaml:"http"`
	Log    Log            `yaml:"log"`
	// Fleet is how the gateway takes config from the fleet (local-only).
	Fleet Fleet `yaml:"fleet"`

	root *yaml.Node
}

// Gateway holds the identity settings. They are local-only: fleet config can
// never change them.
type Gateway struct {
	// ID is the gateway's stable identity (required): letters, digits, '-', '_', '.'.
	ID string `yaml:"id"`
	// Groups the gateway belongs to, for fleet config targeting.
	Groups []string `yaml:"groups"`
	// TrustedKeysFile lists the operator public keys (ed25519) allowed to sign config.
	TrustedKeysFile string `yaml:"trusted_keys_file"`
}

// Buffer is the local store.
type Buffer struct {
	// Path of the bbolt file (required).
	Path string `yaml:"path"`
	// DiskBudget bounds the live data of all streams together; default 1GiB.
	DiskBudget ByteSize `yaml:"disk_budget"`
	// MaxFileSize bounds the file; default 2× disk_budget.
	MaxFileSize ByteSize `yaml:"max_file_size"`
	// CommitWindow is the group-commit wait; default 2ms.
	CommitWindow Duration `yaml:"commit_window"`
	// MaxBatch is the most records per commit; default 1024.
	MaxBatch int `yaml:"max_batch"`
}

// Stream is one named queue of events.
type Stream struct {
	Name      string   `yaml:"name"`
	Priority  int      `yaml:"priority"`   // higher drains first; default 0
	MaxBytes  ByteSize `yaml:"max_bytes"`  // 0 = only the disk budget
	MaxEvents int64    `yaml:"max_events"` // 0 = unlimited
	MaxAge    Duration `yaml:"max_age"`    // 0 = no TTL
	Overflow  string   `yaml:"overflow"`   // reject-new (default) or drop-oldest
}

// Source is one input: a driver instance.
type Source struct {
	Name   string `yaml:"name"`
	Driver string `yaml:"driver"`
	// Optional sources may fail to start: the gateway warns and retries.
	// Required ones (the default) stop the gateway from starting.
	Optional bool `yaml:"optional"`
	// Settings is the driver's own section, under a key named after the
	// driver (e.g. "mqtt:"); decoded into Parsed.
	Settings map[string]yaml.Node `yaml:",inline"`

	// Parsed is the driver's decoded and validated config.
	Parsed any `yaml:"-"`
}

// HTTP is the local status/metrics server.
type HTTP struct {
	// Listen address; default 127.0.0.1:9108. Empty string "off" disables it.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiling endpoints under /debug/pprof/ (off by
	// default; for firmware engineers chasing CPU or memory on a board).
	Pprof bool `yaml:"pprof"`
}

// Log settings.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Defaults returns a Config with every default filled in.
func Defaults() *Config {
	return &Config{
		Buffer: Buffer{
			DiskBudget:   1 << 30,
			CommitWindow: Duration(2e6),
			MaxBatch:     1024,
		},
		Uplink: uplink.DefaultOptions(),
		HTTP:   HTTP{Listen: "127.0.0.1:9108"},
		Log:    Log{Level: "info", Format: "text"},
		Fleet:  DefaultFleet(),
	}
}

// Load reads, decodes and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a config document.
func Parse(b []byte) (*Config, error) { return ParseWith(b, nil) }

// ParseWith is Parse with preset, when not nil, applied to the defaults
// before the document is decoded over them: settings the document leaves
// out keep the preset's values (used to merge local-only settings into a
// pushed fleet document).
func ParseWith(b []byte, preset func(*Config)) (*Config, error) {
	c := Defaults()
	if preset != nil {
		preset(c)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, errors.New("empty config document")
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, err
	}
	c.root = &root
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Root is the parsed YAML document, for locating fields.
func (c *Config) Root() *yaml.Node { return c.root }

// FieldError is one invalid setting.
type FieldError struct {
	Path string // e.g. "streams[1].overflow"
	Line int    // 0 when unknown
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Errors is every problem found in a config, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every setting without I/O and decodes the driver sections.
func (c *Config) Validate() error {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, &FieldError{Path: path, Line: Locate(c.root, path), Msg: fmt.Sprintf(format, args...)})
	}
	if c.Gateway.ID == "" {
		add("gateway.id", "required")
	} else if !idRe.MatchString(c.Gateway.ID) {
		add("gateway.id", "%q: use 1-64 letters, digits, '.', '_' or '-'", c.Gateway.ID)
	}
	for i, g := range c.Gateway.Groups {
		if !idRe.MatchString(g) {
			add(fmt.Sprintf("gateway.groups[%d]", i), "%q: use 1-64 letters, digits, '.', '_' or '-'", g)
		}
	}
	if c.Buffer.Path == "" {
		add("buffer.path", "required")
	}
	if c.Buffer.DiskBudget < 0 {
		add("buffer.disk_budget", "must not be negative")
	}
	if c.Buffer.CommitWindow < 0 || c.Buffer.CommitWindow.D() > 1e9 {
		add("buffer.commit_window", "must be between 0 and 1s")
	}
	if c.Buffer.MaxBatch < 1 || c.Buffer.MaxBatch > 100000 {
		add("buffer.max_batch", "must be between 1 and 100000")
	}
	streams := map[string]bool{}
	if len(c.Streams) == 0 {
		add("streams", "at least one stream is required")
	}
	for i, s := range c.Streams {
		p := fmt.Sprintf("streams[%d]", i)
		switch {
		case s.Name == "":
			add(p+".name", "required")
		case !idRe.MatchString(s.Name):
			add(p+".name", "%q: use letters, digits, '.', '_' or '-'", s.Name)
		case streams[s.Name]:
			add(p+".name", "stream %q is defined twice", s.Name)
		}
		streams[s.Name] = true
		if s.MaxBytes < 0 || s.MaxEvents < 0 || s.MaxAge < 0 {
			add(p, "limits must not be negative")
		}
		switch s.Overflow {
		case "", "reject-new", "drop-oldest":
		default:
			add(p+".overflow", "%q: must be reject-new or drop-oldest", s.Overflow)
		}
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Name == "":
			add(p+".name", "required")
		case !idRe.MatchString(s.Name):
			add(p+".name", "%q: use letters, digits, '.', '_' or '-'", s.Name)
		case names[s.Name]:
			add(p+".name", "source %q is defined twice", s.Name)
		}
		names[s.Name] = true
		reg, ok := drivers.Lookup(s.Driver)
		if !ok {
			add(p+".driver", "%q is not a known driver (known: %s)", s.Driver, strings.Join(drivers.Names(), ", "))
			continue
		}
		var keys []string
		for k := range s.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != s.Driver {
				add(p+"."+k, "unknown field (the settings of driver %q go under %q)", s.Driver, s.Driver)
			}
		}
		cfg := reg.NewConfig()
		if node, ok := s.Settings[s.Driver]; ok {
			if err := DecodeStrict(&node, cfg, p+"."+s.Driver); err != nil {
				es = append(es, &FieldError{Path: p + "." + s.Driver, Line: node.Line, Msg: err.Error()})
				continue
			}
		}
		if v, ok := cfg.(drivers.Validator); ok {
			if err := v.Validate(); err != nil {
				es = append(es, c.driverErrors(p+"."+s.Driver, err)...)
				continue
			}
		}
		s.Parsed = cfg
	}
	if c.Broker != nil {
		if err := c.Broker.Validate(); err != nil {
			es = append(es, c.driverErrors("broker", err)...)
		}
	}
	if err := c.Uplink.Validate(); err != nil {
		es = append(es, c.driverErrors("uplink", err)...)
	}
	c.Fleet.validate(add)
	if len(es) > 0 {
		sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
		return es
	}
	return nil
}

// driverErrors maps a driver's Validate error to field errors with lines. A
// driver error that carries a Path (any error with a `FieldPath() string`
// method, or one per line "path: message") is located in the document.
func (c *Config) driverErrors(prefix string, err error) Errors {
	var out Errors
	var joined interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var fp interface{ FieldPath() string }
		path := prefix
		msg := e.Error()
		if errors.As(e, &fp) && fp.FieldPath() != "" {
			path = prefix + "." + fp.FieldPath()
			msg = strings.TrimPrefix(msg, fp.FieldPath()+": ")
		} else if k, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(k, " \t") {
			path, msg = prefix+"."+k, rest
		}
		out = append(out, &FieldError{Path: path, Line: Locate(c.root, path), Msg: msg})
	}
	return out
}
