package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

func init() { addCommand(newFirmwareCmd) }

func newFirmwareCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "firmware",
		Short: "Push signed gateway releases over Pulsar, roll them out, and follow them",
	}
	c.AddCommand(newFirmwarePushCmd(a), newFirmwareStatusCmd(a), newFirmwareRolloutCmd(a))
	return c
}

// releaseFlags are the flags that describe a release (push and rollout).
type releaseFlags struct {
	dir, image, base, keyFile, build, platform string
	version                                    uint64
	storeFormat                                uint32
	partSize                                   int
}

func (r *releaseFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&r.dir, "dir", "", "`make firmware` output for one target (e.g. dist/linux-arm64): its gateway binary is the image")
	fs.StringVar(&r.image, "image", "", "the gateway binary (instead of --dir)")
	fs.StringVar(&r.base, "base", "", "the binary the gateways run now: a delta against it travels beside the full image")
	fs.StringVar(&r.keyFile, "key", "", "operator private key file")
	fs.StringVar(&r.build, "build", "", "the release's build name (default: VERSION beside the image, as make firmware writes it, else the image's -X main.version when its build information has it)")
	fs.StringVar(&r.platform, "platform", "", "linux/arm64, linux/arm/v7, ... (default: read from the image)")
	fs.Uint64Var(&r.version, "version", 0, "release version (default: one more than the highest on the firmware topic)")
	fs.Uint32Var(&r.storeFormat, "store-format", buffer.FormatVersion, "buffer format the image's build writes (default: this gatewayctl's, built from the same tree)")
	fs.IntVar(&r.partSize, "part-size", firmware.DefaultPartSize, "bytes per message on the images topic")
}

// release reads the image (and base) and builds the unsigned manifest and
// the payloads' bytes.
func (r *releaseFlags) release(target string) (*firmware.Manifest, [][]byte, *fleet.PrivateKey, error) {
	if (r.dir == "") == (r.image == "") {
		return nil, nil, nil, errors.New("say which image: --dir DIST/TARGET or --image FILE")
	}
	if r.keyFile == "" {
		return nil, nil, nil, errors.New("--key FILE is required")
	}
	key, err := fleet.LoadPrivateKey(r.keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	path := r.image
	if path == "" {
		path = filepath.Join(r.dir, "gateway")
	}
	img, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	platform, build := imageInfo(path)
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "VERSION")); err == nil { // make firmware writes it
		build = strings.TrimSpace(string(b))
	}
	if r.platform != "" {
		platform = r.platform
	}
	if r.build != "" {
		build = r.build
	}
	if build == "" {
		return nil, nil, nil, fmt.Errorf("%s: no build name: pass --build (make firmware writes it to DIST/TARGET/VERSION)", path)
	}
	sum := sha256.Sum256(img)
	m := &firmware.Manifest{Target: target, Platform: platform, Version: r.version, Build: build,
		Size: int64(len(img)), SHA256: sum[:], StoreFormat: r.storeFormat}
	p, data, err := firmware.Encode(img, nil, r.partSize)
	if err != nil {
		return nil, nil, nil, err
	}
	m.Payloads = []firmware.Payload{p}
	datas := [][]byte{data}
	if r.base != "" {
		base, err := os.ReadFile(r.base)
		if err != nil {
			return nil, nil, nil, err
		}
		p, data, err := firmware.Encode(img, base, r.partSize)
		if err != nil {
			return nil, nil, nil, err
		}
		m.Payloads, datas = append(m.Payloads, p), append(datas, data)
	}
	m.Version = max(m.Version, 1) // checked for shape; the real version is set when published
	if err := m.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Version = r.version
	return m, datas, key, nil
}

// imageInfo reads the platform and the -X main.version stamp from a Go
// binary's build information.
func imageInfo(path string) (platform, build string) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", ""
	}
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	for _, f := range strings.Fields(s["-ldflags"]) {
		if v, ok := strings.CutPrefix(f, "main.version="); ok {
			build = v
		}
	}
	return firmware.PlatformOf(s["GOOS"], s["GOARCH"], s["GOARM"]), build
}

// publishImage sends every payload's parts to the images topic.
func publishImage(ctx context.Context, ctl *uplink.Control, m *firmware.Manifest, datas [][]byte) error {
	topic := ctl.Topic(firmware.ImageTopic)
	for pi, p := range m.Payloads {
		for i := range p.Parts {
			off := int64(i) * p.PartSize
			part := datas[pi][off:min(off+p.PartSize, p.Size)]
			err := ctl.Publish(ctx, topic, uplink.KeyedMessage{Key: firmware.PartKey(p.ID(), i), Payload: part,
				Properties: map[string]string{"kind": "firmware-part", "index": strconv.Itoa(i), "offset": strconv.FormatInt(off, 10),
					"parts": strconv.Itoa(len(p.Parts)), "encoding": p.Encoding}})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// publishManifest signs m for target and publishes it under exclusive
// access to the manifest topic; its version is m.Version, or one more than
// the highest release of the platform signed by a trusted key.
func publishManifest(ctx context.Context, ctl *uplink.Control, m *firmware.Manifest, key *fleet.PrivateKey, target string) error {
	trusted := fleet.TrustedKeys{key.ID: {ID: key.ID, Key: key.Public()}}
	return ctl.PublishExclusive(ctx, ctl.Topic(firmware.ManifestTopic), func(read []uplink.KeyedMessage) (uplink.KeyedMessage, error) {
		var highest uint64
		for _, msg := range read {
			o, err := firmware.Unmarshal(msg.Payload)
			if err != nil || o.Platform != m.Platform {
				continue
			}
			if tk, ok := trusted[o.KeyID]; ok && ed25519.Verify(tk.Key, o.SigningBytes(), o.Signature) {
				highest = max(highest, o.Version)
			}
		}
		switch {
		case m.Version == 0:
			m.Version = highest + 1
		case m.Version < highest:
			return uplink.KeyedMessage{}, fmt.Errorf("--version %d: version %d of %s exists already", m.Version, highest, m.Platform)
		}
		m.Target, m.IssuedAt = target, time.Now().UTC()
		m.Sign(key)
		return uplink.KeyedMessage{Key: firmware.ManifestKey(target, m.Platform), Payload: m.Marshal(),
			Properties: map[string]string{"kind": "firmware-manifest", "version": strconv.FormatUint(m.Version, 10), "key_id": key.ID}}, nil
	})
}

// pushResult of `firmware push`, also printed by rollout.
type firmwarePushResult struct {
	Key         string `json:"key"`
	Version     uint64 `json:"version"`
	Build       string `json:"build"`
	ImageBytes  int64  `json:"image_bytes"`
	FullBytes   int64  `json:"full_bytes"`
	DeltaBytes  int64  `json:"delta_bytes,omitempty"`
	Parts       int    `json:"parts"`
	StoreFormat uint32 `json:"store_format"`
	KeyID       string `json:"key_id"`
}

func pushResultOf(m *firmware.Manifest) firmwarePushResult {
	r := firmwarePushResult{Key: firmware.ManifestKey(m.Target, m.Platform), Version: m.Version, Build: m.Build, ImageBytes: m.Size,
		FullBytes: m.Payloads[0].Size, StoreFormat: m.StoreFormat, KeyID: m.KeyID}
	for _, p := range m.Payloads {
		r.Parts += len(p.Parts)
		if p.Encoding == firmware.EncodingDelta {
			r.DeltaBytes = p.Size
		}
	}
	return r
}

func printFirmwarePush(w io.Writer, output string, r firmwarePushResult) error {
	if output == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "pushed %s version %d (%s): image %d bytes, full payload %d bytes", r.Key, r.Version, r.Build, r.ImageBytes, r.FullBytes)
	if r.DeltaBytes > 0 {
		fmt.Fprintf(w, ", delta %d bytes", r.DeltaBytes)
	}
	fmt.Fprintf(w, ", %d parts, store format %d, key %s\n", r.Parts, r.StoreFormat, r.KeyID)
	return nil
}

func newFirmwarePushCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	r := &releaseFlags{}
	var id, group string
	c := &cobra.Command{
		Use:   "push (--target GATEWAY-ID | --group LABEL) (--dir DIST/TARGET | --image FILE) --key FILE [--base FILE]",
		Short: "Sign and publish a gateway release: its payload parts, then its manifest",
		Long: `Sign and publish a gateway release for one target (make firmware's
dist/<target>/gateway).

The image is compressed with zstd and cut into parts (--part-size) on the
firmware-images topic; with --base (the binary the gateways run now) a delta
against it travels too, and each gateway takes the delta when its binary is
that base, else the full payload. The manifest, signed with the operator key
in the firmware signature domain, goes to the compacted firmware topic under
<target>|<platform>, with one more than the highest version of that
platform unless --version says otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tgt, _, err := target(id, group, false)
			if err != nil {
				return err
			}
			m, datas, key, err := r.release(tgt.Key())
			if err != nil {
				return err
			}
			ctx, ctl, done, err := p.connect(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer done()
			if err := publishImage(ctx, ctl, m, datas); err != nil {
				return err
			}
			if err := publishManifest(ctx, ctl, m, key, tgt.Key()); err != nil {
				return err
			}
			return printFirmwarePush(cmd.OutOrStdout(), a.output, pushResultOf(m))
		},
	}
	p.add(c.Flags(), a)
	r.add(c.Flags())
	c.Flags().StringVar(&id, "target", "", "gateway ID to push to")
	c.Flags().StringVar(&group, "group", "", "group label to push to")
	return c
}
