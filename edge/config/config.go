package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	_ "github.com/edgegw/gateway/drivers/mqtt" // registers "mqtt" for users of the loader that link no drivers/all
	"github.com/edgegw/gateway/drivers/mqttbroker"
	"github.com/edgegw/gateway/edge/logging"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/units"
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
	// Rules are the edge rules, in order (package edge/rules).
	Rules []rules.Rule `yaml:"rules"`
	// Tables are the lookup tables the rules' conditions see, by name.
	Tables map[string]rules.Table `yaml:"tables"`

	// Dir is the directory of the config file (Load), against which
	// relative table paths are read; "" for a document parsed from bytes.
	Dir string `yaml:"-"`

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
	DiskBudget units.ByteSize `yaml:"disk_budget"`
	// MaxFileSize bounds the file; default 2× disk_budget.
	MaxFileSize units.ByteSize `yaml:"max_file_size"`
	// CommitWindow is the group-commit wait; default 2ms.
	CommitWindow units.Duration `yaml:"commit_window"`
	// FillWindow is the longest an event may wait, at high rates (about
	// 1,700 events/s and more), for its commit's journal frame to fill a
	// flash page; default 10ms, 0 turns it off. README "Storage".
	FillWindow units.Duration `yaml:"fill_window"`
	// MaxBatch is the most records per commit; default 1024.
	MaxBatch int `yaml:"max_batch"`
	// JournalSize is the ingest journal beside the store (path.journal),
	// where most commits become durable at a flash page each; default
	// 4MiB, 64KiB..1GiB, 0 turns it off (every commit goes to the store
	// file: several pages each). README "Storage".
	JournalSize units.ByteSize `yaml:"journal_size"`
	// JournalMoveInterval is the longest a journaled commit waits to be
	// moved into the store file; default 5m, 1s..1h.
	JournalMoveInterval units.Duration `yaml:"journal_move_interval"`
}

// Stream is one named queue of events.
type Stream struct {
	Name      string         `yaml:"name"`
	Priority  int            `yaml:"priority"`   // higher drains first; default 0
	MaxBytes  units.ByteSize `yaml:"max_bytes"`  // 0 = only the disk budget
	MaxEvents int64          `yaml:"max_events"` // 0 = unlimited
	MaxAge    units.Duration `yaml:"max_age"`    // 0 = no TTL ("7d", "336h")
	Overflow  string         `yaml:"overflow"`   // reject-new (default) or drop-oldest
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
			DiskBudget:          1 << 30,
			CommitWindow:        units.Duration(2e6),
			FillWindow:          units.Duration(10e6),
			MaxBatch:            1024,
			JournalSize:         4 << 20,
			JournalMoveInterval: units.Duration(300e9),
		},
		Uplink: uplink.DefaultOptions(),
		HTTP:   HTTP{Listen: "127.0.0.1:9108"},
		Log:    Log{Level: "info", Format: "text"},
		Fleet:  DefaultFleet(),
	}
}

// MaxSize is the largest config document the gateway reads: a bigger one
// is refused before it is parsed (parsing YAML takes many times its size
// in memory).
const MaxSize = 4 << 20

// ErrTooLarge is wrapped by the error for a document over MaxSize.
var ErrTooLarge = errors.New("config too large")

func tooLarge(what string) error {
	return fmt.Errorf("%w: %s, the limit is 4 MiB (%d bytes)", ErrTooLarge, what, MaxSize)
}

// Load reads, decodes and validates a config file.
func Load(path string) (*Config, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Dir = filepath.Dir(path)
	return c, nil
}

// ReadFile reads a config file of at most MaxSize bytes. A larger one is
// refused, naming the file, without reading more than MaxSize+1 bytes of
// it (none, when its size is known).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hint int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > MaxSize {
			return nil, fmt.Errorf("%s: %w", path, tooLarge(fmt.Sprintf("%d bytes", fi.Size())))
		}
		hint = fi.Size()
	}
	b, err := readAtMost(f, hint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// readAtMost reads r to its end if that is at most MaxSize bytes away;
// otherwise it fails having read MaxSize+1 bytes. hint is the expected
// size (0: unknown).
func readAtMost(r io.Reader, hint int64) ([]byte, error) {
	var buf bytes.Buffer
	if hint > 0 && hint <= MaxSize {
		buf.Grow(int(hint) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxSize {
		return nil, tooLarge(fmt.Sprintf("more than %d bytes", MaxSize))
	}
	return buf.Bytes(), nil
}

// Parse decodes and validates a config document.
func Parse(b []byte) (*Config, error) { return ParseWith(b, nil) }

// ParseWith is Parse with preset, when not nil, applied to the defaults
// before the document is decoded over them: settings the document leaves
// out keep the preset's values (used to merge local-only settings into a
// pushed fleet document).
//
// A document over MaxSize is refused before it is parsed. Otherwise every
// problem is reported at once, as units.Errors in file order: unknown and
// repeated keys and values of the wrong type (each with its key path and
// line), then what Validate finds in the rest of the document.
func ParseWith(b []byte, preset func(*Config)) (*Config, error) {
	if len(b) > MaxSize {
		return nil, tooLarge(fmt.Sprintf("a document of %d bytes", len(b)))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, syntaxError(err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("empty config document")
	}
	c := Defaults()
	if preset != nil {
		preset(c)
	}
	var w walker
	w.check(&root, reflect.TypeOf(c), "")
	var err error
	if len(w.errs) == 0 {
		// The strict decoder also refuses unknown keys that merge keys
		// ("<<") bring in, which the walker leaves to it.
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		err = dec.Decode(c)
	} else {
		// Decode the rest, so that Validate can report on it too.
		w.blank()
		err = root.Decode(c)
	}
	es := w.errs
	complete := true
	if err != nil {
		var te *yaml.TypeError
		complete = errors.As(err, &te) // on a TypeError the decoder went on; on others it stopped
		es = append(es, yamlErrors(&root, err, "", es)...)
	}
	c.root = &root
	if complete {
		var ves units.Errors
		if err := c.Validate(); errors.As(err, &ves) {
			es = append(es, units.Uncovered(ves, es)...)
		} else if err != nil {
			return nil, err
		}
	}
	if len(es) > 0 {
		return nil, finish(es)
	}
	return c, nil
}

// syntaxError is a YAML parse error as field errors: its line, no path.
func syntaxError(err error) error {
	es := units.YAMLMessages(err)
	for i, e := range es {
		es[i] = fieldError("", e.Line, e.Msg)
	}
	return es
}

// Root is the parsed YAML document, for locating fields.
func (c *Config) Root() *yaml.Node { return c.root }

// finish sorts es into file order (errors without a line first) and
// bounds it to maxErrors, saying how many more there were.
func finish(es units.Errors) units.Errors {
	es.SortByLine()
	if n := len(es) - maxErrors; n > 0 {
		es = append(es[:maxErrors:maxErrors], &units.FieldError{Msg: fmt.Sprintf("and %d more errors", n)})
	}
	return es
}

// checkName adds the errors of the name of a stream or source at path:
// missing, not a valid name, or already in seen (which it is added to).
func checkName(add func(path, format string, args ...any), path, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		add(path, "required")
	case !units.ValidName(name):
		add(path, "%s: %s", quote(name), units.NameRule)
	case seen[name]:
		add(path, "%s %s is defined twice", kind, quote(name))
	}
	seen[name] = true
}

// Validate checks every setting without I/O and decodes the driver
// sections. It checks everything the gateway checks at start before its
// first I/O (the HTTP listen address, the log settings, that an embedded
// broker a source uses is configured and built in), so that a config that
// validates does not fail at start for a reason the file alone shows.
func (c *Config) Validate() error {
	var es units.Errors
	add := func(path, format string, args ...any) {
		es = append(es, fieldError(path, units.Locate(c.root, path), fmt.Sprintf(format, args...)))
	}
	if c.Gateway.ID == "" {
		add("gateway.id", "required")
	} else if !units.ValidName(c.Gateway.ID) {
		add("gateway.id", "%s: %s", quote(c.Gateway.ID), units.NameRule)
	}
	for i, g := range c.Gateway.Groups {
		if !units.ValidName(g) {
			add(fmt.Sprintf("gateway.groups[%d]", i), "%s: %s", quote(g), units.NameRule)
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
	if c.Buffer.FillWindow < 0 || c.Buffer.FillWindow.D() > 1e9 {
		add("buffer.fill_window", "must be between 0 (off) and 1s")
	}
	if c.Buffer.MaxBatch < 1 || c.Buffer.MaxBatch > 100000 {
		add("buffer.max_batch", "must be between 1 and 100000")
	}
	if j := c.Buffer.JournalSize; j != 0 && (j < 64<<10 || j > 1<<30) {
		add("buffer.journal_size", "must be 0 (off) or between 64KiB and 1GiB")
	}
	if d := c.Buffer.JournalMoveInterval.D(); d < 1e9 || d > 3600e9 {
		add("buffer.journal_move_interval", "must be between 1s and 1h")
	}
	streams := map[string]bool{}
	if len(c.Streams) == 0 {
		add("streams", "at least one stream is required")
	}
	for i, s := range c.Streams {
		p := fmt.Sprintf("streams[%d]", i)
		checkName(add, p+".name", "stream", s.Name, streams)
		if s.MaxBytes < 0 || s.MaxEvents < 0 || s.MaxAge < 0 {
			add(p, "limits must not be negative")
		}
		switch s.Overflow {
		case "", "reject-new", "drop-oldest":
		default:
			add(p+".overflow", "%s: must be reject-new or drop-oldest", quote(s.Overflow))
		}
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		checkName(add, p+".name", "source", s.Name, names)
		reg, ok := drivers.Lookup(s.Driver)
		if !ok {
			add(p+".driver", "%s is not a known driver (known: %s)", quote(s.Driver), strings.Join(drivers.Names(), ", "))
			continue
		}
		var keys []string
		for k := range s.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != s.Driver {
				add(join(p, clip(k)), "unknown field (the settings of driver %s go under %s)", quote(s.Driver), quote(s.Driver))
			}
		}
		// The driver's section: its unknown keys and values that do not
		// decode, and what its Validate finds in the rest, reported
		// together (Validate's paths are relative to the section).
		cfg := reg.NewConfig()
		var des units.Errors
		complete := true
		if node, ok := s.Settings[s.Driver]; ok {
			des, complete = decodeSection(&node, cfg, p+"."+s.Driver)
			es = append(es, des...)
		}
		if v, ok := cfg.(drivers.Validator); ok && complete {
			if ves := c.sectionErrors(p+"."+s.Driver, v.Validate()); len(ves) > 0 {
				es = append(es, units.Uncovered(ves, des)...)
				continue
			}
		}
		if len(des) > 0 {
			continue
		}
		// The pipeline refuses to start a source on the embedded broker
		// when there is none.
		if u, ok := cfg.(drivers.InboxUser); ok && c.Broker == nil {
			if setting, uses := u.UsesInbox(); uses {
				add(strings.TrimSuffix(p+"."+s.Driver+"."+setting, "."), "the source takes its input from the gateway's embedded broker, but the config has no broker: section")
				continue
			}
		}
		s.Parsed = cfg
	}
	if c.Broker != nil {
		if !EmbeddedBrokerBuilt {
			add("broker", "this build has no embedded broker (built with -tags noembedded)")
		}
		if err := c.Broker.Validate(); err != nil {
			es = append(es, c.sectionErrors("broker", err)...)
		}
	}
	if err := c.Uplink.Validate(); err != nil {
		es = append(es, c.sectionErrors("uplink", err)...)
	}
	if l := c.HTTP.Listen; l != "" && l != "off" {
		if problem := listenProblem(l); problem != "" {
			add("http.listen", "%s: %s (want host:port, e.g. 127.0.0.1:9108, or off)", quote(l), problem)
		}
	}
	if _, err := logging.ParseLevel(c.Log.Level); err != nil {
		add("log.level", "%s: want debug, info, warn or error", quote(c.Log.Level))
	}
	if _, err := logging.New(io.Discard, logging.Options{Format: c.Log.Format}); err != nil {
		add("log.format", "%s: want text or json", quote(c.Log.Format))
	}
	c.Fleet.validate(add)
	env := rules.Env{Streams: streams, Outputs: map[string][]string{}}
	for _, s := range c.Sources {
		if n, ok := s.Parsed.(drivers.OutputNamer); ok {
			env.Outputs[s.Name] = n.CommandOutputs()
		}
	}
	for _, e := range rules.Validate(c.Rules, c.Tables, env) {
		es = append(es, fieldError(e.Path, units.Locate(c.root, e.Path), e.Msg))
	}
	if len(es) > 0 {
		return finish(es)
	}
	return nil
}

var hostRe = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$`)

// listenProblem is what is wrong with a TCP listen address, or "". It
// resolves nothing: a host name that does not resolve fails only at start.
func listenProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return ae.Err
		}
		return "not host:port"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "the port must be a number from 0 to 65535"
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if len(host) > 253 || !hostRe.MatchString(host) {
		return "the host must be an IP address or a host name"
	}
	return ""
}

// sectionErrors turns the error of a section's Validate (a driver's, the
// broker's, the uplink's), whose paths are relative to the section, into
// errors of the document: each path gets prefix, the section's path, in
// front and is located in the document; messages are clipped.
func (c *Config) sectionErrors(prefix string, err error) units.Errors {
	var out units.Errors
	for _, e := range units.Under(prefix, err) {
		out = append(out, fieldError(e.Path, units.Locate(c.root, e.Path), e.Msg))
	}
	return out
}

// Locate sets the line of each field error in err (a units.Errors whose
// paths are the document's, e.g. from loading its rules' tables) and
// returns err.
func (c *Config) Locate(err error) error {
	var es units.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			if e.Line == 0 {
				e.Line = units.Locate(c.root, e.Path)
			}
		}
	}
	return err
}
