package buffer

import (
	"context"
	"fmt"
	"time"
)

// ConfigureStream creates a stream or updates its limits, priority and policy;
// the configuration is persisted. New limits apply from the next Append or
// sweep: changing a configuration never drops entries by itself. A stream
// created in a store that replaced a bad file starts its seqs at the Unix time
// in microseconds and records a "corrupt" gap; otherwise seqs start at 1.
func (db *DB) ConfigureStream(cfg StreamConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	r := &request{apply: func(s *stage) error { return s.configure(cfg) }}
	return db.submit(context.Background(), r)
}

func (s *stage) configure(cfg StreamConfig) error {
	if st := s.stream(cfg.Name); st != nil {
		st.cfg = cfg
		return nil
	}
	s.heavy = true // readers need the bucket in the file
	if _, err := s.tx.Bucket(bktData).CreateBucket([]byte(cfg.Name)); err != nil {
		return fatal(err)
	}
	st := &streamState{cfg: cfg, next: 1, first: 1}
	if s.store.Recovered > 0 || s.db.opts.TimeSeededSeq {
		st.next = uint64(max(1, s.now.UnixMicro()))
		st.first = st.next
	}
	s.streams[cfg.Name] = st
	if s.store.Recovered == 0 || s.store.RecoveredBoot != s.store.Boot {
		return nil
	}
	g := Gap{Stream: cfg.Name, From: 1, To: st.next - 1, Reason: ReasonCorrupt, At: s.now}
	if err := s.recordGap(cfg.Name, st, g); err != nil {
		return err
	}
	if s.db.opts.GapEncoder != nil { // written when the transaction ends
		st.sealQ = append(st.sealQ, openGap{Reason: g.Reason, From: g.From, To: g.To, At: g.At, End: st.first})
	}
	return nil
}

// Ack removes every entry of the stream with seq <= upTo, gap events
// included. Acking a seq at or below an earlier ack is a no-op; acking a
// seq that was never assigned fails with ErrInvalidAck.
//
// Durability: without the journal (Options.JournalSize < 0), and whenever
// the commit goes to the file, the removal is durable when Ack returns.
// With the journal, a commit of acks alone is written to it but not
// synced: it becomes durable with the next synced commit (the next
// Append's, usually in the same flash page, so the ack costs no page of
// its own), the next move into the file (Options.MoveInterval at the
// latest), or Close. A kill -9 loses nothing (the written frame is in the
// page cache); a power cut before then brings back entries acked since,
// and the uplink sends them again under the same seqs, which the broker's
// deduplication drops: never an event lost, at most a re-send. Readers
// see the removal at once either way.
func (db *DB) Ack(stream string, upTo uint64) error {
	db.stateMu.RLock()
	st, ok := db.streams[stream]
	var acked uint64
	if ok {
		acked = st.acked
	}
	db.stateMu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownStream, stream)
	}
	if upTo <= acked {
		return nil
	}
	r := &request{lazy: true, apply: func(s *stage) error { return s.ack(stream, upTo) }}
	return db.submit(context.Background(), r)
}

func (s *stage) ack(name string, upTo uint64) error {
	st := s.stream(name)
	if st == nil {
		return fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	if upTo >= st.next {
		return fmt.Errorf("%w: %q: ack %d, last assigned %d", ErrInvalidAck, name, upTo, st.next-1)
	}
	st.acked = max(st.acked, upTo)
	pinned, err := s.removeGapEnts(name, st, upTo)
	if err != nil {
		return err
	}
	st.bytes -= pinned
	s.total -= pinned
	if upTo < st.first {
		return nil
	}
	h := s.scan(name, st, st.first)
	var bytes int64
	for seq := st.first; seq <= upTo; seq++ {
		_, sz, _, _, ok := h.next()
		if !ok {
			return fatal(fmt.Errorf("%w: stream %q: seq %d missing", ErrCorrupt, name, seq))
		}
		bytes += sz
	}
	if err := s.deleteRange(name, st.first, upTo+1); err != nil {
		return err
	}
	st.first = upTo + 1
	st.bytes -= bytes
	s.total -= bytes
	return s.settleHead(name, st)
}

// sweep enforces MaxAge on every stream.
func (s *stage) sweep() error {
	for _, name := range s.names() {
		c := s.db.streams[name]
		if c != nil && (c.cfg.MaxAge <= 0 || c.first == c.next || s.now.UnixNano()-c.oldestAt < int64(c.cfg.MaxAge)) {
			continue // nothing expired: do not touch the record
		}
		if err := s.expire(name, s.stream(name)); err != nil {
			s.db.opts.Logger.Error("buffer: TTL sweep failed", "stream", name, "err", err)
			if _, ok := err.(*fatalError); ok {
				return err
			}
		}
	}
	return nil
}

// GetMeta returns the value stored under key, or ErrNotFound.
func (db *DB) GetMeta(key string) ([]byte, error) {
	var out []byte
	err := db.view(func(v *viewTx) error {
		if val := v.tx.Bucket(bktKV).Get([]byte(key)); val != nil {
			out = append([]byte{}, val...)
			return nil
		}
		return fmt.Errorf("%w: meta %q", ErrNotFound, key)
	})
	return out, err
}

// PutMeta durably stores val under key; a nil val deletes the key. Meant for
// small values such as the last-known-good configuration.
func (db *DB) PutMeta(key string, val []byte) error {
	if key == "" {
		return fmt.Errorf("%w: empty meta key", ErrInvalid)
	}
	del := val == nil
	val = append([]byte{}, val...)
	r := &request{apply: func(s *stage) error {
		s.heavy = true // GetMeta reads the file
		b := s.tx.Bucket(bktKV)
		if del {
			return fatal(b.Delete([]byte(key)))
		}
		return fatal(b.Put([]byte(key), val))
	}}
	return db.submit(context.Background(), r)
}

// unixTime converts append times for Stats.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
