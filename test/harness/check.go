package harness

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

func attrInt(a map[string]any, k string) (int64, bool) {
	switch v := a[k].(type) {
	case int64:
		return v, true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), true
	}
	return 0, false
}

// Delivery summarises what reached a topic: per publisher, the message
// counters in arrival order, and per gateway the seqs in arrival order
// (several gateways may feed one topic: each has seqs of its own).
type Delivery struct {
	PerPub  map[string][]int64
	Seqs    map[string][]uint64
	Invalid []string
}

// Summarise groups received events by their "pub" attribute.
func Summarise(msgs []Received) Delivery {
	d := Delivery{PerPub: map[string][]int64{}, Seqs: map[string][]uint64{}}
	for _, m := range msgs {
		if m.Err != nil {
			d.Invalid = append(d.Invalid, m.Err.Error())
			continue
		}
		pub, _ := m.Event.Attrs["pub"].(string)
		n, ok := attrInt(m.Event.Attrs, "n")
		if pub == "" || !ok {
			d.Invalid = append(d.Invalid, fmt.Sprintf("event without pub/n: kind %s attrs %v", m.Event.Kind, m.Event.Attrs))
			continue
		}
		d.PerPub[pub] = append(d.PerPub[pub], n)
		d.Seqs[m.Event.Gateway] = append(d.Seqs[m.Event.Gateway], m.Event.Seq)
	}
	return d
}

// ExactlyOnce checks that every publisher's counters 1..want[pub] arrived
// exactly once; inOrder also requires them in publish order. It returns a
// description of every problem ("" when none).
func (d Delivery) ExactlyOnce(want map[string]int, inOrder bool) string {
	var probs []string
	for pub, n := range want {
		got := d.PerPub[pub]
		seen := map[int64]int{}
		for _, v := range got {
			seen[v]++
		}
		var missing, dups []int64
		for i := int64(1); i <= int64(n); i++ {
			switch seen[i] {
			case 0:
				missing = append(missing, i)
			case 1:
			default:
				dups = append(dups, i)
			}
		}
		if len(missing) > 0 {
			probs = append(probs, fmt.Sprintf("%s: %d missing (first %v)", pub, len(missing), head(missing)))
		}
		if len(dups) > 0 {
			probs = append(probs, fmt.Sprintf("%s: %d duplicated (first %v)", pub, len(dups), head(dups)))
		}
		if len(got) != n && len(missing) == 0 && len(dups) == 0 {
			probs = append(probs, fmt.Sprintf("%s: %d events, want %d", pub, len(got), n))
		}
		if inOrder && !sort.SliceIsSorted(got, func(i, j int) bool { return got[i] < got[j] }) {
			probs = append(probs, fmt.Sprintf("%s: out of order", pub))
		}
	}
	for pub := range d.PerPub {
		if _, ok := want[pub]; !ok {
			probs = append(probs, fmt.Sprintf("unexpected publisher %q", pub))
		}
	}
	for gw, seqs := range d.Seqs {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				probs = append(probs, fmt.Sprintf("gateway %s: seq not strictly increasing at %d: %d after %d", gw, i, seqs[i], seqs[i-1]))
				break
			}
		}
	}
	if len(d.Invalid) > 0 {
		probs = append(probs, fmt.Sprintf("%d undecodable/foreign messages (first: %s)", len(d.Invalid), d.Invalid[0]))
	}
	sort.Strings(probs)
	return strings.Join(probs, "; ")
}

func head(v []int64) []int64 {
	if len(v) > 10 {
		return v[:10]
	}
	return v
}

// WaitDelivered waits until col holds at least every counter in want, then
// checks they arrived exactly once (in order when inOrder). On a timeout it
// says how many arrived, which are missing, and what the gateway's uplink
// counted for stream, so a loss is told apart from a slow read.
func (g *Gateway) WaitDelivered(col *Collector, stream string, want map[string]int, inOrder bool, timeout time.Duration) {
	g.t.Helper()
	total := 0
	for _, n := range want {
		total += n
	}
	if err := testenv.Poll(timeout, fmt.Sprintf("%d events read back from Pulsar", total), func() bool { return col.Len() >= total }); err != nil {
		st, _ := g.Status()
		ss, _ := st.Stream(stream)
		g.t.Fatalf("%v: %d of %d arrived; %s; gateway %q stream: sent %d, acked %d, broker duplicates %d, in flight %d, depth %d\ngateway log:\n%s",
			err, col.Len(), total, Summarise(col.Messages()).ExactlyOnce(want, inOrder),
			stream, ss.Sent, ss.Acked, ss.Duplicates, ss.InFlight, ss.Depth, g.Log())
	}
	if probs := Summarise(col.Messages()).ExactlyOnce(want, inOrder); probs != "" {
		g.t.Fatalf("delivery: %s", probs)
	}
}
