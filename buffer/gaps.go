package buffer

import (
	"encoding/json"
	"fmt"
	"time"
)

// Gap records entries that were dropped rather than delivered: seqs From..To
// of Stream (Count of them), why, and when. A Reason of "corrupt" means the
// store file was replaced: Count is then 0 (unknown) and From..To is the seq
// range that may have been lost; store-wide gaps have an empty Stream.
type Gap struct {
	Stream   string
	From, To uint64
	Count    uint64
	Reason   string
	At       time.Time
}

// Gaps returns the recorded gaps of a stream, oldest first; the history is
// bounded by Options.GapHistory. Gaps("") returns the store-wide gaps (a bad
// file replaced).
func (db *DB) Gaps(stream string) ([]Gap, error) {
	key := stream
	if stream == "" {
		key = storeGaps
	} else {
		db.stateMu.RLock()
		_, ok := db.streams[stream]
		db.stateMu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownStream, stream)
		}
	}
	var out []Gap
	err := db.view(func(v *viewTx) error {
		b := v.tx.Bucket(bktGaps).Bucket([]byte(key))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, val []byte) error {
			var g Gap
			if err := json.Unmarshal(val, &g); err != nil {
				return fmt.Errorf("%w: gap record: %v", ErrCorrupt, err)
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}
