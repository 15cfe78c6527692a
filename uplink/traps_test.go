package uplink

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
)

// The dedup traps of client-side batching with external sequence IDs, run
// against the real broker (deduplication on, one producer name, every step a
// new producer as after a gateway restart). They document what the broker
// does with each wire format, and so why the uplink uses the patched client
// in third_party/pulsar-client-go and sends only what the broker lacks.
//
// highestOnWire tells whether the linked client puts highest_sequence_id on
// batch sends (the patched client); with the stock v0.21.0 client the
// expectations are those of pulsar-client-go issues 1395 and 1407.

// trapStep is one producer session: batches (each flushed as one Pulsar
// batch) or single unbatched messages, each a range of sequence IDs.
type trapStep struct {
	batched bool
	ranges  [][2]int64
}

type trapResult struct {
	stored []int64 // sequence IDs of the messages on the topic, in order
	dups   int     // receipts with message ID -1:-1
	// brokerLast is ProducerSuccess.last_sequence_id of each step's
	// producer, -2 when the client does not expose it.
	brokerLast []int64
}

// runTrap runs steps on a fresh topic and reads the topic back.
func runTrap(t *testing.T, ns *pulsarNS, steps []trapStep) trapResult {
	t.Helper()
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: ns.serviceURL, Logger: plog.NewLoggerWithSlog(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	topic := "persistent://" + ns.tenant + "/" + ns.name + "/trap"
	var res trapResult
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, st := range steps {
		p, err := pc.CreateProducer(pulsar.ProducerOptions{
			Topic: topic, Name: "gw-trap/scans", DisableBatching: !st.batched, SendTimeout: -1,
			BatchingMaxMessages: 10000, BatchingMaxPublishDelay: time.Hour,
		})
		if err != nil {
			t.Fatalf("step %d: producer: %v", i, err)
		}
		res.brokerLast = append(res.brokerLast, brokerLastSequenceID(p))
		type receipt struct {
			id  pulsar.MessageID
			err error
		}
		var n int
		done := make(chan receipt, 1000)
		for _, r := range st.ranges {
			for s := r[0]; s <= r[1]; s++ {
				seq := s
				n++
				p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(strconv.FormatInt(seq, 10)), SequenceID: &seq},
					func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { done <- receipt{id, err} })
			}
			if st.batched {
				if err := p.FlushWithCtx(ctx); err != nil {
					t.Fatalf("step %d: flush: %v", i, err)
				}
			}
		}
		for range n {
			r := <-done
			if r.err != nil {
				t.Fatalf("step %d: send: %v", i, r.err)
			}
			if isDuplicateReceipt(r.id) {
				res.dups++
			}
		}
		p.Close()
	}
	r, err := pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.HasNext() {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := strconv.ParseInt(string(m.Payload()), 10, 64)
		res.stored = append(res.stored, s)
	}
	return res
}

// brokerLastSequenceID returns what the broker said it has from this
// producer name when the producer was created, or -2 when the client does
// not expose it (stock pulsar-client-go).
func brokerLastSequenceID(p pulsar.Producer) int64 {
	if b, ok := p.(interface{ BrokerLastSequenceID() int64 }); ok {
		return b.BrokerLastSequenceID()
	}
	return -2
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func cat(parts ...[]int64) []int64 {
	var out []int64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func batches(rs ...[2]int64) trapStep { return trapStep{batched: true, ranges: rs} }
func singles(from, to int64) trapStep {
	return trapStep{ranges: [][2]int64{{from, to}}}
}

func TestDedupTraps(t *testing.T) {
	probe := runTrap(t, newNamespace(t, true), []trapStep{batches([2]int64{1, 3})})
	highestOnWire := probe.brokerLast[0] != -2
	t.Logf("client exposes the broker's last sequence ID (patched client): %v", highestOnWire)

	cases := []struct {
		name  string
		steps []trapStep
		// want stored with the stock client and with the patched one; dups likewise.
		stock, patched         []int64
		stockDups, patchedDups int
	}{{
		// Unbatched sends dedup correctly: 3, 4, 5 are dropped.
		name:  "unbatched 1-5 then 3-7",
		steps: []trapStep{singles(1, 5), singles(3, 7)},
		stock: seqRange(1, 7), patched: seqRange(1, 7), stockDups: 3, patchedDups: 3,
	}, {
		// Issue 1395: the stock batch advances dedup only to its first ID,
		// so 1-15 (first ID 1) is all "duplicate": 11-15 are never stored.
		// With highest_sequence_id the broker has 10, and the mixed batch
		// 1-15 is still dropped whole (issue 1407): a client must not send
		// a batch that starts at or below what the broker has.
		name:  "batch 1-10 then batch 1-15",
		steps: []trapStep{batches([2]int64{1, 10}), batches([2]int64{1, 15})},
		stock: seqRange(1, 10), patched: seqRange(1, 10), stockDups: 15, patchedDups: 15,
	}, {
		// Stock: 5 > 1, so 5-15 is stored whole: 5-10 twice. Patched: 5 <= 10,
		// dropped whole: 11-15 lost. Either way a batch straddling what the
		// broker has is wrong; the uplink skips to broker last + 1.
		name:  "batch 1-10 then batch 5-15",
		steps: []trapStep{batches([2]int64{1, 10}), batches([2]int64{5, 15})},
		stock: cat(seqRange(1, 10), seqRange(5, 15)), patched: seqRange(1, 10), stockDups: 0, patchedDups: 11,
	}, {
		// Stock: after batch 1-10 (dedup at 1) unbatched re-sends 2-10 are
		// stored again. Patched: dedup at 10, all dropped.
		name:  "batch 1-10 then unbatched 2-10",
		steps: []trapStep{batches([2]int64{1, 10}), singles(2, 10)},
		stock: cat(seqRange(1, 10), seqRange(2, 10)), patched: seqRange(1, 10), stockDups: 0, patchedDups: 9,
	}, {
		// What the uplink does with the patched client: skip what the
		// broker has, batch only what is new: exactly once.
		name:  "batch 1-10 then batch 11-15 then batch 16-20, 21-30",
		steps: []trapStep{batches([2]int64{1, 10}), batches([2]int64{11, 15}), batches([2]int64{16, 20}, [2]int64{21, 30})},
		stock: seqRange(1, 30), patched: seqRange(1, 30),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runTrap(t, newNamespace(t, true), tc.steps)
			want, wantDups := tc.stock, tc.stockDups
			if highestOnWire {
				want, wantDups = tc.patched, tc.patchedDups
			}
			t.Logf("stored %v, %d duplicate receipts, broker last sequence ID at each producer %v", res.stored, res.dups, res.brokerLast)
			if fmt.Sprint(res.stored) != fmt.Sprint(want) || res.dups != wantDups {
				t.Errorf("stored %v with %d duplicate receipts, want %v with %d", res.stored, res.dups, want, wantDups)
			}
		})
	}
}
