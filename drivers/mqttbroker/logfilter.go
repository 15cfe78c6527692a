package mqttbroker

import (
	"context"
	"log/slog"
	"reflect"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// packetFilter is the slog.Handler the broker gives mochi. mochi logs whole
// packets as attributes ("error processing packet" ... "pk", pk; "packet",
// pk; "will", will), and a packet carries a CONNECT's password or a
// PUBLISH's payload. The filter drops, at any group depth and in WithAttrs
// too:
//
//   - attributes named pk, packet or will;
//   - attributes whose value (after LogValuer resolution) is, or points to,
//     or is a slice of, a type of mochi's packets package (Packet,
//     ConnectParams, Properties...) or a mochi.Will, whatever its name;
//
// packets.Code, the type of mochi's reason errors, is kept, as are the
// client, listener, remote and error attributes.
type packetFilter struct{ h slog.Handler }

func newPacketFilter(h slog.Handler) slog.Handler { return packetFilter{h: h} }

func (f packetFilter) Enabled(ctx context.Context, l slog.Level) bool { return f.h.Enabled(ctx, l) }

func (f packetFilter) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a, ok := filterAttr(a); ok {
			nr.AddAttrs(a)
		}
		return true
	})
	return f.h.Handle(ctx, nr)
}

func (f packetFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return packetFilter{h: f.h.WithAttrs(filterAttrs(as))}
}

func (f packetFilter) WithGroup(name string) slog.Handler {
	return packetFilter{h: f.h.WithGroup(name)}
}

func filterAttrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a, ok := filterAttr(a); ok {
			out = append(out, a)
		}
	}
	return out
}

// filterAttr returns a without its packets, or false to drop it.
func filterAttr(a slog.Attr) (slog.Attr, bool) {
	switch strings.ToLower(a.Key) {
	case "pk", "packet", "will":
		return a, false
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		kept := filterAttrs(g)
		if len(kept) == 0 && len(g) > 0 {
			return a, false
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(kept...)}, true
	case slog.KindAny:
		if isPacket(v.Any()) {
			return a, false
		}
	}
	return slog.Attr{Key: a.Key, Value: v}, true
}

var (
	packetsPkg = reflect.TypeFor[packets.Packet]().PkgPath()
	codeType   = reflect.TypeFor[packets.Code]()
	willType   = reflect.TypeFor[mochi.Will]()
)

// isPacket: x is (a pointer to, a slice or array or map of) a type of the
// packets package other than packets.Code, or a mochi.Will.
func isPacket(x any) bool {
	t := reflect.TypeOf(x)
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map, reflect.Chan:
			t = t.Elem()
			continue
		}
		break
	}
	if t == nil || t == codeType {
		return false
	}
	return t == willType || t.PkgPath() == packetsPkg
}
