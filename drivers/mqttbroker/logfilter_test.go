package mqttbroker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

type packetValuer struct{ pk packets.Packet }

func (v packetValuer) LogValue() slog.Value { return slog.AnyValue(v.pk) }

func TestPacketFilter(t *testing.T) {
	const secret = "hunter2-secret"
	pk := packets.Packet{Connect: packets.ConnectParams{Password: []byte(secret), ClientIdentifier: "c1"}, Payload: []byte(secret)}
	var buf bytes.Buffer
	log := slog.New(newPacketFilter(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))

	log.Warn("error processing packet", "error", packets.ErrProtocolViolationSecondConnect, "client", "c1", "listener", "devices", "pk", pk)
	log.Debug("failed publishing packet", "client", "c1", "packet", &pk)
	log.Info("renamed", "p", pk, "ptr", &pk, "list", []packets.Packet{pk}, "params", pk.Connect, "valuer", packetValuer{pk}, "kept", "yes")
	log.Info("grouped", slog.Group("a", slog.Group("b", "x", pk, "y", "deep-kept")), slog.Group("only", "pk", pk))
	log.With("pk", pk, "client", "c2").WithGroup("g").With("w", mochi.Will{Payload: []byte(secret)}).Info("with", "z", &pk, "reason", "r1")
	log.Error("will", "will", mochi.Will{Payload: []byte(secret)})

	out := buf.String()
	if strings.Contains(out, secret) || strings.Contains(out, "104 117 110") { // "hun" as %v prints bytes
		t.Fatalf("secret in log:\n%s", out)
	}
	for _, want := range []string{
		`error="protocol violation: second connect packet" client=c1 listener=devices`,
		"kept=yes", "a.b.y=deep-kept", "client=c2", "g.reason=r1", `msg="failed publishing packet" client=c1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"pk=", "packet=", "p=", "ptr=", "list=", "params=", "valuer=", "a.b.x=", "only", "g.w=", "g.z=", "will="} {
		if strings.Contains(out, " "+gone) {
			t.Errorf("log holds %q:\n%s", gone, out)
		}
	}
}
