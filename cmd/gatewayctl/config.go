package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/units"
	"github.com/edgegw/gateway/uplink"

	// The drivers, so that pushed documents are validated with their
	// sources' settings, as the gateway will.
	_ "github.com/edgegw/gateway/drivers/all"
)

func init() { addCommand(newConfigCmd) }

// pulsarFlags say how to reach the fleet's control topics. Each falls back
// to an environment variable, then to a default.
type pulsarFlags struct {
	url, adminURL, tenant, namespace     string
	tokenFile, caFile, certFile, keyFile string
	insecure                             bool
	timeout                              time.Duration
	configTopic, statusTopic             string
}

// Environment variables behind the Pulsar flags.
const (
	envPulsarURL       = "EDGE_PULSAR_URL"
	envPulsarAdminURL  = "EDGE_PULSAR_ADMIN_URL"
	envPulsarTenant    = "EDGE_PULSAR_TENANT"
	envPulsarNamespace = "EDGE_PULSAR_NAMESPACE"
	envPulsarToken     = "EDGE_PULSAR_TOKEN_FILE"
	envPulsarCA        = "EDGE_PULSAR_TLS_CA_FILE"
	envTrustedKeys     = "EDGE_TRUSTED_KEYS_FILE"
)

// MaxVersion is the highest version `config push` assigns or accepts:
// 2^53, the largest integer every JSON reader (JavaScript's numbers, many
// dashboards) holds exactly, and so far above any real push count that a
// higher version on the config topic can only be a mistake or an attack.
// Versions are computed from bundles signed by trusted keys only, so a
// rogue bundle cannot push the next version past it.
const MaxVersion uint64 = 1 << 53

// add registers the flags on fs (local flags of each command that talks
// to Pulsar: config push, config show, status).
func (p *pulsarFlags) add(fs *pflag.FlagSet, a *app) {
	def := a.env
	fs.StringVar(&p.url, "pulsar", def(envPulsarURL, "pulsar://127.0.0.1:6650"), "Pulsar service URL, pulsar:// or pulsar+ssl:// (env "+envPulsarURL+")")
	fs.StringVar(&p.adminURL, "pulsar-admin", def(envPulsarAdminURL, ""), "Pulsar admin `URL`, used by config push --compact (env "+envPulsarAdminURL+")")
	fs.StringVar(&p.tenant, "tenant", def(envPulsarTenant, "public"), "tenant of the control topics (env "+envPulsarTenant+")")
	fs.StringVar(&p.namespace, "namespace", def(envPulsarNamespace, "default"), "namespace of the control topics (env "+envPulsarNamespace+")")
	fs.StringVar(&p.tokenFile, "token-file", def(envPulsarToken, ""), "file holding a JWT for token authentication (env "+envPulsarToken+")")
	fs.StringVar(&p.caFile, "tls-ca-file", def(envPulsarCA, ""), "PEM CA bundle to trust (env "+envPulsarCA+")")
	fs.StringVar(&p.certFile, "tls-cert-file", "", "client certificate (mutual TLS)")
	fs.StringVar(&p.keyFile, "tls-key-file", "", "client certificate key (mutual TLS)")
	fs.BoolVar(&p.insecure, "tls-allow-insecure", false, "accept any broker certificate")
	fs.DurationVar(&p.timeout, "pulsar-timeout", 30*time.Second, "timeout of the whole Pulsar operation")
	fs.StringVar(&p.configTopic, "config-topic", config.DefaultFleet().ConfigTopic, "name of the config topic (fleet.config_topic of the gateways)")
	fs.StringVar(&p.statusTopic, "status-topic", config.DefaultFleet().StatusTopic, "name of the status topic (fleet.status_topic of the gateways)")
}

// options are the uplink options of the flags.
func (p *pulsarFlags) options() uplink.Options {
	o := uplink.DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = p.url, p.adminURL, p.tenant, p.namespace
	o.AuthTokenFile, o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile, o.TLSAllowInsecure = p.tokenFile, p.caFile, p.certFile, p.keyFile, p.insecure
	o.RequireDedup = false
	o.OperationTimeout, o.SendTimeout = units.Duration(p.timeout), units.Duration(p.timeout)
	return o
}

// control opens the control channel; the caller closes it.
func (p *pulsarFlags) control(a *app) (*uplink.Control, error) {
	return uplink.NewControl(p.options(), a.log.With("component", "control"))
}

// connect is what a command that talks to Pulsar starts with: a context
// bounded by --timeout and a control client; done closes both.
func (p *pulsarFlags) connect(parent context.Context, a *app) (context.Context, *uplink.Control, func(), error) {
	ctx, cancel := context.WithTimeout(parent, p.timeout)
	ctl, err := p.control(a)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, ctl, func() { ctl.Close(); cancel() }, nil
}

func newConfigCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Push signed config to gateways or groups, and show what is pushed",
	}
	c.AddCommand(newConfigPushCmd(a), newConfigShowCmd(a), newConfigResetCmd(a))
	return c
}

// target reads --target / --group; exactly one is required unless optional.
func target(id, group string, optional bool) (fleet.Target, bool, error) {
	switch {
	case id != "" && group != "":
		return fleet.Target{}, false, errors.New("--target and --group exclude each other")
	case id != "":
		t := fleet.GatewayTarget(id)
		return t, true, t.Validate()
	case group != "":
		t := fleet.GroupTarget(group)
		return t, true, t.Validate()
	case optional:
		return fleet.Target{}, false, nil
	}
	return fleet.Target{}, false, errors.New("say whom to push to: --target GATEWAY-ID or --group LABEL")
}

// pushResult is what `config push` prints with -o json.
type pushResult struct {
	Key      string    `json:"key"`
	Version  uint64    `json:"version"`
	IssuedAt time.Time `json:"issued_at"`
	KeyID    string    `json:"key_id"`
	Bytes    int       `json:"bytes"`
	DryRun   bool      `json:"dry_run,omitempty"`
}

// pushOptions are the flags of `config push`.
type pushOptions struct {
	id, group     string // --target, --group
	file, keyFile string // -f, --key
	version       uint64 // 0: one more than the highest known
	trustedFile   string // --trusted-keys: whose bundles count for versions
	localFile     string // --local: check the document as this gateway would
	dryRun        bool
	compact       bool
}

func newConfigPushCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	o := &pushOptions{}
	c := &cobra.Command{
		Use:   "push (--target GATEWAY-ID | --group LABEL) -f FILE --key FILE",
		Short: "Validate, sign and publish a config document to the config topic",
		Long: `Validate, sign and publish a config document.

The document is validated as a gateway will (with placeholders for the
local-only settings it leaves out: gateway, buffer, fleet, http, log).
Placeholders for per-gateway values (${local:NAME}, ${gateway.id}) are
allowed; each gateway fills them in from its local file's
fleet.local_values. With --local FILE the document is checked as the gateway
with that local file would check it, placeholders included. Its
version is one more than the highest version on the config topic (of bundles
signed by a trusted key: --trusted-keys and the signing key; others are
ignored with a warning) or reported on the status topic, unless --version
says otherwise; versions above 2^53 are refused. The bundle is published
under the key gw:<id> or group:<label> while holding the topic's only producer
(exclusive access), so that concurrent pushes cannot pick the same version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return configPush(cmd, a, p, o) },
	}
	p.add(c.Flags(), a)
	c.Flags().StringVar(&o.id, "target", "", "gateway ID to push to")
	c.Flags().StringVar(&o.group, "group", "", "group label to push to (gateways listing it in gateway.groups)")
	c.Flags().StringVarP(&o.file, "file", "f", "", "config document (YAML)")
	c.Flags().StringVar(&o.keyFile, "key", "", "operator private key file")
	c.Flags().Uint64Var(&o.version, "version", 0, "version to assign (default: one more than the highest known)")
	c.Flags().StringVar(&o.trustedFile, "trusted-keys", a.env(envTrustedKeys, ""), "trusted-keys file: only bundles signed by these keys (and --key) count for the next version (env "+envTrustedKeys+")")
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "validate and sign, publish nothing")
	c.Flags().StringVar(&o.localFile, "local", "", "a gateway's local config `file`: check the document as that gateway would (its ${local:NAME} values, its local-only settings)")
	c.Flags().BoolVar(&o.compact, "compact", false, "ask the broker to compact the config topic afterwards (needs --pulsar-admin)")
	return c
}

// configPush runs `config push`: the bundle is built and checked locally,
// then (unless --dry-run) versioned, signed and published under exclusive
// access to the config topic.
func configPush(cmd *cobra.Command, a *app, p *pulsarFlags, o *pushOptions) error {
	b, key, err := loadPush(o, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	trusted, err := operatorKeys(o.trustedFile, key)
	if err != nil {
		return err
	}
	if o.dryRun {
		b.Sign(key)
		return printPush(cmd, a, b, 0, true)
	}
	ctx, ctl, done, err := p.connect(cmd.Context(), a)
	if err != nil {
		return err
	}
	defer done()
	reported := reportedVersions(ctx, ctl, p, cmd.ErrOrStderr())
	size, err := publishBundle(ctx, ctl, ctl.Topic(p.configTopic), b, key, trusted, reported, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if o.compact {
		if err := ctl.Compact(ctl.Topic(p.configTopic)); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: pushed, but compaction was not started: %v\n", err)
		}
	}
	return printPush(cmd, a, b, size, false)
}

// loadPush checks the flags, reads and validates the document and reads
// the operator key: the unsigned bundle (version --version, 0 when the
// version is to be assigned) and the key to sign it with. A document that
// sets local-only settings is a warning on stderr.
func loadPush(o *pushOptions, stderr io.Writer) (*fleet.Bundle, *fleet.PrivateKey, error) {
	tgt, _, err := target(o.id, o.group, false)
	if err != nil {
		return nil, nil, err
	}
	if o.file == "" || o.keyFile == "" {
		return nil, nil, errors.New("-f FILE and --key FILE are required")
	}
	doc, err := config.ReadFile(o.file)
	if err != nil {
		return nil, nil, err
	}
	if len(doc) > fleet.MaxDocument {
		return nil, nil, fmt.Errorf("%s: %d bytes; a pushed document may have at most %d", o.file, len(doc), fleet.MaxDocument)
	}
	var local *config.Config
	if o.localFile != "" {
		if local, err = config.Load(o.localFile); err != nil {
			return nil, nil, fmt.Errorf("--local: %w", err)
		}
	}
	localOnly, err := fleet.CheckDocumentFor(doc, local)
	if err != nil {
		if local != nil {
			return nil, nil, fmt.Errorf("%s: invalid config for gateway %s:\n%w", o.file, local.Gateway.ID, err)
		}
		return nil, nil, fmt.Errorf("%s: invalid config:\n%w", o.file, err)
	}
	if local == nil && config.HasPlaceholders(doc) {
		fmt.Fprintf(stderr, "note: %s has placeholders; each gateway fills them in from its fleet.local_values (check one gateway's with --local FILE)\n", o.file)
	}
	if len(localOnly) > 0 {
		fmt.Fprintf(stderr, "warning: %s sets local-only settings %v; gateways refuse the bundle unless they equal their own (leave them out)\n", o.file, localOnly)
	}
	key, err := fleet.LoadPrivateKey(o.keyFile)
	if err != nil {
		return nil, nil, err
	}
	return &fleet.Bundle{Target: tgt, Version: o.version, IssuedAt: time.Now().UTC(), Document: doc}, key, nil
}

// operatorKeys are the keys whose bundles count when versions are
// computed: the trusted-keys file (if any) and the signing key.
func operatorKeys(file string, key *fleet.PrivateKey) (fleet.TrustedKeys, error) {
	keys := fleet.TrustedKeys{}
	if file != "" {
		var err error
		if keys, err = fleet.LoadTrustedKeys(file); err != nil {
			return nil, err
		}
	}
	line := fleet.TrustedLine(key.Public(), "")
	own, err := fleet.ParseTrustedKeys([]byte(line + "\n"))
	if err != nil {
		return nil, err
	}
	for id, k := range own {
		keys[id] = k
	}
	return keys, nil
}

// publishBundle publishes b to topic while holding the topic's only
// producer: it assigns the version from what the topic holds (bundles
// signed by trusted keys only) and the reported version, signs and
// publishes. b ends up as published; the result is the size of the
// published message. Bundles ignored for the version are warned about on
// stderr.
func publishBundle(ctx context.Context, ctl *uplink.Control, topic string, b *fleet.Bundle, key *fleet.PrivateKey,
	trusted fleet.TrustedKeys, reported uint64, stderr io.Writer) (int, error) {
	requested := b.Version
	var size int
	err := ctl.PublishExclusive(ctx, topic, func(read []uplink.KeyedMessage) (uplink.KeyedMessage, error) {
		highest, ignored := highestVersion(read, reported, trusted)
		for _, s := range ignored {
			fmt.Fprintf(stderr, "warning: ignored for the version: %s\n", s)
		}
		m, err := bundleMessage(b, key, requested, highest)
		size = len(m.Payload)
		return m, err
	})
	return size, err
}

// highestVersion is the highest version among the bundles of msgs signed
// by a key of trusted, or reported if that is higher. Messages that are not
// bundles do not count; bundles signed otherwise do not count either, and
// are named in ignored (a bundle anyone can publish must not set the next
// version: one at 2^64-1 would leave none).
func highestVersion(msgs []uplink.KeyedMessage, reported uint64, trusted fleet.TrustedKeys) (highest uint64, ignored []string) {
	highest = reported
	// Every message, not only the latest per key: a bundle since removed
	// (config reset) may have been applied, and gateways refuse versions
	// not above it.
	for _, m := range msgs {
		pb, err := fleet.Unmarshal(m.Payload)
		if err != nil {
			continue
		}
		if err := pb.CheckSignature(trusted); err != nil {
			ignored = append(ignored, fmt.Sprintf("%s version %d: %v", m.Key, pb.Version, err))
			continue
		}
		highest = max(highest, pb.Version)
	}
	sort.Strings(ignored)
	return highest, ignored
}

// bundleMessage gives b its version (requested, or one more than highest
// when requested is 0), stamps and signs it, and returns the message that
// publishes it. A requested version not above highest, or a version above
// MaxVersion, is refused.
func bundleMessage(b *fleet.Bundle, key *fleet.PrivateKey, requested, highest uint64) (uplink.KeyedMessage, error) {
	switch {
	case requested == 0 && highest >= MaxVersion:
		return uplink.KeyedMessage{}, fmt.Errorf("the highest version, %d, signed by a trusted key or reported by a gateway, is at the ceiling of 2^53 (%d): "+
			"no next version. Versions that high are a mistake; gateways that applied one refuse anything lower, so give them a new operator key and reset their fleet state", highest, MaxVersion)
	case requested > MaxVersion:
		return uplink.KeyedMessage{}, fmt.Errorf("--version %d: above the ceiling of 2^53 (%d), which keeps versions exact in every JSON reader and leaves room to push", requested, MaxVersion)
	case requested == 0:
		b.Version = highest + 1
	case requested <= highest:
		return uplink.KeyedMessage{}, fmt.Errorf("--version %d: version %d exists already; gateways refuse versions that are not newer", requested, highest)
	default:
		b.Version = requested
	}
	b.IssuedAt = time.Now().UTC()
	b.Sign(key)
	data, err := fleet.Marshal(b)
	if err != nil {
		return uplink.KeyedMessage{}, err
	}
	return uplink.KeyedMessage{Key: b.Target.Key(), Payload: data,
		Properties: map[string]string{"kind": "config-bundle", "version": fmt.Sprint(b.Version), "key_id": key.ID}}, nil
}

func printPush(cmd *cobra.Command, a *app, b *fleet.Bundle, size int, dry bool) error {
	r := pushResult{Key: b.Target.Key(), Version: b.Version, IssuedAt: b.IssuedAt, KeyID: b.KeyID, Bytes: size, DryRun: dry}
	if a.output == "json" {
		return writeJSON(cmd.OutOrStdout(), r)
	}
	if dry {
		fmt.Fprintf(cmd.OutOrStdout(), "ok: valid document for %s, signed by %s (dry run: nothing published)\n", r.Key, r.KeyID)
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "pushed %s version %d (issued %s, key %s, %d bytes)\n", r.Key, r.Version, r.IssuedAt.Format(time.RFC3339), r.KeyID, r.Bytes)
	return nil
}

// reportedVersions is the highest config version the gateways report on
// the status topic (applied, rejected or rolled back): it keeps versions
// growing even after compaction dropped an older, higher bundle.
func reportedVersions(ctx context.Context, ctl *uplink.Control, p *pulsarFlags, stderr io.Writer) uint64 {
	msgs, err := ctl.Read(ctx, ctl.Topic(p.statusTopic))
	if err != nil {
		fmt.Fprintf(stderr, "warning: cannot read the status topic (%v); versions come from the config topic alone\n", err)
		return 0
	}
	var v uint64
	for _, m := range uplink.Latest(msgs) {
		s, err := fleet.DecodeStatus(m.Payload)
		if err != nil {
			continue
		}
		rv := s.Config.Version
		// A refused bundle's version is anyone's; the others were verified
		// by the gateway (running, in probation, rolled back).
		if s.Config.State != fleet.StateRejected {
			rv = max(rv, s.Config.Bundle)
		}
		if rv > MaxVersion {
			fmt.Fprintf(stderr, "warning: gateway %s reports version %d, above the ceiling of 2^53; ignored for the version\n", s.Gateway, rv)
			continue
		}
		v = max(v, rv)
	}
	return v
}

func newConfigResetCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	var id string
	var compact bool
	c := &cobra.Command{
		Use:   "reset --target GATEWAY-ID",
		Short: "Remove a gateway's own bundle, so that it follows its groups' bundles again",
		Long: `Remove the bundle pushed to one gateway (key gw:<id>): publishes an empty
message (a tombstone) under that key on the config topic, which deletes the
key for every reader and, at the next compaction, from the topic.

The gateway keeps running its config until a group bundle newer than every
version it has applied or tried arrives: push the group's document again
after the reset (config push --group LABEL). With --compact the broker is
asked to compact the topic afterwards (needs --pulsar-admin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return errors.New("say which gateway: --target GATEWAY-ID (group bundles are replaced by pushing, not reset)")
			}
			tgt := fleet.GatewayTarget(id)
			if err := tgt.Validate(); err != nil {
				return err
			}
			ctx, ctl, done, err := p.connect(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer done()
			topic := ctl.Topic(p.configTopic)
			var had bool
			err = ctl.PublishExclusive(ctx, topic, func(read []uplink.KeyedMessage) (uplink.KeyedMessage, error) {
				_, had = uplink.Latest(read)[tgt.Key()]
				return uplink.KeyedMessage{Key: tgt.Key(), Payload: nil,
					Properties: map[string]string{"kind": "config-reset"}}, nil
			})
			if err != nil {
				return err
			}
			if compact {
				if err := ctl.Compact(topic); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: reset, but compaction was not started: %v\n", err)
				}
			}
			out := cmd.OutOrStdout()
			if a.output == "json" {
				return writeJSON(out, map[string]any{"key": tgt.Key(), "reset": true, "had_bundle": had})
			}
			if !had {
				fmt.Fprintf(out, "nothing was pushed to %s; published a tombstone anyway\n", tgt.Key())
				return nil
			}
			fmt.Fprintf(out, "reset %s: the gateway follows its groups again once a group bundle newer than its running version is pushed\n", tgt.Key())
			return nil
		},
	}
	p.add(c.Flags(), a)
	c.Flags().StringVar(&id, "target", "", "gateway ID whose own bundle to remove")
	c.Flags().BoolVar(&compact, "compact", false, "ask the broker to compact the config topic afterwards (needs --pulsar-admin)")
	return c
}

// shownBundle is one target's bundle, as `config show` prints it.
type shownBundle struct {
	Key       string    `json:"key"`
	Version   uint64    `json:"version"`
	IssuedAt  time.Time `json:"issued_at"`
	KeyID     string    `json:"key_id"`
	Published time.Time `json:"published"`
	Signature string    `json:"signature"` // ok, unchecked or the reason it is refused
	Document  string    `json:"document,omitempty"`
	Error     string    `json:"error,omitempty"` // the message is not a bundle
}

func newConfigShowCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	var id, group, trusted string
	c := &cobra.Command{
		Use:   "show [--target GATEWAY-ID | --group LABEL]",
		Short: "Show what the config topic targets: one target's bundle and document, or every target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tgt, one, err := target(id, group, true)
			if err != nil {
				return err
			}
			var keys fleet.TrustedKeys
			if trusted != "" {
				if keys, err = fleet.LoadTrustedKeys(trusted); err != nil {
					return err
				}
			}
			ctx, ctl, done, err := p.connect(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer done()
			msgs, err := ctl.Read(ctx, ctl.Topic(p.configTopic))
			if err != nil {
				return err
			}
			latest := uplink.Latest(msgs)
			var shown []shownBundle
			for k, m := range latest {
				if one && k != tgt.Key() {
					continue
				}
				shown = append(shown, showBundle(k, m, keys, one))
			}
			sort.Slice(shown, func(i, j int) bool { return shown[i].Key < shown[j].Key })
			if one && len(shown) == 0 {
				return fmt.Errorf("nothing is pushed to %s", tgt.Key())
			}
			out := cmd.OutOrStdout()
			if a.output == "json" {
				if one {
					return writeJSON(out, shown[0])
				}
				if shown == nil {
					shown = []shownBundle{}
				}
				return writeJSON(out, shown)
			}
			if one {
				s := shown[0]
				fmt.Fprintf(out, "key:        %s\nversion:    %d\nissued at:  %s\npublished:  %s\nkey ID:     %s\nsignature:  %s\n",
					s.Key, s.Version, s.IssuedAt.Format(time.RFC3339), s.Published.Format(time.RFC3339), s.KeyID, s.Signature)
				if s.Error != "" {
					fmt.Fprintf(out, "error:      %s\n", s.Error)
				}
				fmt.Fprintf(out, "---\n%s", s.Document)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVERSION\tISSUED\tKEY ID\tSIGNATURE\tBYTES")
			for _, s := range shown {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\n", s.Key, s.Version, s.IssuedAt.Format(time.RFC3339), dash(s.KeyID), s.Signature, len(latest[s.Key].Payload))
			}
			return tw.Flush()
		},
	}
	p.add(c.Flags(), a)
	c.Flags().StringVar(&id, "target", "", "gateway ID")
	c.Flags().StringVar(&group, "group", "", "group label")
	c.Flags().StringVar(&trusted, "trusted-keys", "", "trusted-keys file to check the signatures with (default: not checked)")
	return c
}

func showBundle(key string, m uplink.KeyedMessage, keys fleet.TrustedKeys, withDoc bool) shownBundle {
	s := shownBundle{Key: key, Published: m.Published, Signature: "unchecked"}
	b, err := fleet.Unmarshal(m.Payload)
	if err != nil {
		s.Error, s.Signature = err.Error(), "-"
		return s
	}
	s.Version, s.IssuedAt, s.KeyID = b.Version, b.IssuedAt, b.KeyID
	if keys != nil {
		s.Signature = "ok"
		if err := b.CheckSignature(keys); err != nil {
			s.Signature = err.Error()
		}
	}
	if b.Target.Key() != key {
		s.Error = fmt.Sprintf("the bundle is for %s but published under %s: gateways refuse it", b.Target.Key(), key)
	}
	if withDoc {
		s.Document = string(b.Document)
	}
	return s
}
