package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// jop is one change a journaled transaction made to the file: a put or a
// delete of a key in one of the buckets a journaled commit may touch.
// Anything else (creating buckets, quarantine, kv) makes the transaction
// "heavy": it is committed to bbolt directly (stage.heavy).
type jop struct {
	del  bool
	bkt  byte   // jData, jFIFO, jStreams, jMeta, jGaps
	name string // stream, for jData, jFIFO and jGaps
	key  []byte
	val  []byte
}

const (
	jData    byte = 1 // data/<name>/
	jFIFO    byte = 2 // dedup/<name>/fifo/
	jStreams byte = 3 // streams/
	jMeta    byte = 4 // meta/
	jGaps    byte = 5 // gaps/<name>/ (the gap history; format 6)
)

const (
	opPut byte = 1
	opDel byte = 2
)

func (o *jop) encodedLen() int {
	return 2 + 3*binary.MaxVarintLen32 + len(o.name) + len(o.key) + len(o.val)
}

func (o *jop) append(buf []byte) []byte {
	kind := opPut
	if o.del {
		kind = opDel
	}
	buf = append(buf, kind, o.bkt)
	buf = binary.AppendUvarint(buf, uint64(len(o.name)))
	buf = append(buf, o.name...)
	buf = binary.AppendUvarint(buf, uint64(len(o.key)))
	buf = append(buf, o.key...)
	if !o.del {
		buf = binary.AppendUvarint(buf, uint64(len(o.val)))
		buf = append(buf, o.val...)
	}
	return buf
}

var errBadOp = errors.New("malformed op")

func decodeOps(p []byte) ([]jop, error) {
	var ops []jop
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, errBadOp
		}
		v := p[k : k+int(n)]
		p = p[k+int(n):]
		return v, nil
	}
	for len(p) > 0 {
		if len(p) < 2 {
			return nil, errBadOp
		}
		kind, bkt := p[0], p[1]
		p = p[2:]
		if kind != opPut && kind != opDel || bkt < jData || bkt > jGaps {
			return nil, fmt.Errorf("%w: kind %d bucket %d", errBadOp, kind, bkt)
		}
		o := jop{del: kind == opDel, bkt: bkt}
		name, err := field()
		if err != nil {
			return nil, err
		}
		o.name = string(name)
		if o.key, err = field(); err != nil {
			return nil, err
		}
		if !o.del {
			if o.val, err = field(); err != nil {
				return nil, err
			}
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// applyOps redoes ops in tx (replay at Open, and rebuilding the open
// transaction after a rollback).
func applyOps(tx *bolt.Tx, ops []jop) error {
	for _, o := range ops {
		var b *bolt.Bucket
		switch o.bkt {
		case jData:
			b = tx.Bucket(bktData).Bucket([]byte(o.name))
			if b != nil {
				b.FillPercent = 1.0
			}
		case jFIFO:
			if sb := tx.Bucket(bktDedup).Bucket([]byte(o.name)); sb != nil {
				b = sb.Bucket(bktDedupFIFO)
			}
			if b != nil {
				b.FillPercent = 1.0
			}
		case jStreams:
			b = tx.Bucket(bktStreams)
		case jMeta:
			b = tx.Bucket(bktMeta)
		case jGaps:
			b = tx.Bucket(bktGaps).Bucket([]byte(o.name))
		}
		if b == nil {
			return fmt.Errorf("%w: journal: bucket %d %q missing", ErrCorrupt, o.bkt, o.name)
		}
		var err error
		if o.del {
			err = b.Delete(o.key)
		} else {
			err = b.Put(o.key, o.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bput puts k = v in b, a bucket of kind bkt, and records it.
func (s *stage) bput(bkt byte, name string, b *bolt.Bucket, k, v []byte) error {
	if err := b.Put(k, v); err != nil {
		return fatal(err)
	}
	s.ops = append(s.ops, jop{bkt: bkt, name: name, key: k, val: v})
	return nil
}

// bdel deletes k from b, a bucket of kind bkt, and records it.
func (s *stage) bdel(bkt byte, name string, b *bolt.Bucket, k []byte) error {
	k = append([]byte(nil), k...) // cursor keys point into pages
	if err := b.Delete(k); err != nil {
		return fatal(err)
	}
	s.ops = append(s.ops, jop{del: true, bkt: bkt, name: name, key: k})
	return nil
}
