package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/event"
)

// errAbandoned settles rows whose write was still failing, or not yet
// started, when the write context ended: their message is neither
// acknowledged nor dead-lettered, so Pulsar redelivers it.
var errAbandoned = errors.New("sink: write abandoned")

// PoisonError is a write that can never succeed because of the row itself
// (see Poison). Its message is dead-lettered.
type PoisonError struct{ Err error }

func (e *PoisonError) Error() string { return "cassandra refused the row: " + e.Err.Error() }

func (e *PoisonError) Unwrap() error { return e.Err }

// Writer upserts the rows of events into Cassandra. Rows of the same table
// and partition are sent together as an unlogged batch (bounded by
// WriteConfig.BatchRows and BatchBytes); at most WriteConfig.Concurrency
// requests are in flight, and submitting more blocks, which is how the sink
// applies back-pressure to Pulsar. Failed writes are retried with backoff
// (see Classify). A Writer is safe for concurrent use.
type Writer struct {
	session *gocql.Session
	inserts map[string]string
	cfg     WriteConfig
	retry   RetryConfig
	ttl     TTLConfig
	sem     chan struct{}
	wg      sync.WaitGroup
	m       *metrics
	log     *slog.Logger
	failing atomic.Int64 // unix nanos of the first failure of the current streak, 0 if none

	lastLog  atomic.Int64 // unix nanos of the last retry log line
	unlogged atomic.Int64 // failures since, not logged
}

// retryLogEvery rate-limits the log of failed writes: an outage fails every
// in-flight write at once, and each retries many times.
const retryLogEvery = time.Second

func (w *Writer) logNow() bool {
	now := time.Now().UnixNano()
	last := w.lastLog.Load()
	return now-last >= int64(retryLogEvery) && w.lastLog.CompareAndSwap(last, now)
}

// NewWriter returns a Writer for the keyspace and settings of cfg on an open
// session whose schema is migrated; its metrics go to reg (nil: not
// registered), its logs to log (nil: slog.Default()).
func NewWriter(s *gocql.Session, cfg Config, reg prometheus.Registerer, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.Default()
	}
	return newWriter(s, cfg, newMetrics(reg), log.With("component", "sink"))
}

func newWriter(s *gocql.Session, cfg Config, m *metrics, log *slog.Logger) *Writer {
	ins := make(map[string]string, len(tables))
	for _, t := range tables {
		ins[t.name] = t.insert(cfg.Cassandra.Keyspace)
	}
	return &Writer{
		session: s, inserts: ins, cfg: cfg.Write, retry: cfg.Retry, ttl: cfg.Cassandra.TTL,
		sem: make(chan struct{}, cfg.Write.Concurrency), m: m, log: log,
	}
}

// job is the rows of one message (or one event given to Write): done is
// called once, when every row is settled, with nil (all written), a
// *PoisonError, or errAbandoned.
type job struct {
	left atomic.Int32
	mu   sync.Mutex
	err  error
	done func(error)
}

func (j *job) settle(err error) {
	if err != nil {
		j.mu.Lock()
		if j.err == nil || errors.Is(err, errAbandoned) {
			j.err = err
		}
		j.mu.Unlock()
	}
	if j.left.Add(-1) == 0 {
		j.mu.Lock()
		err := j.err
		j.mu.Unlock()
		j.done(err)
	}
}

type item struct {
	job  *job
	rows []row
}

type pendingRow struct {
	job *job
	row row
}

// submit groups the rows of items by partition and starts their writes. It
// blocks while Concurrency requests are in flight. Every job's done is
// eventually called, also when ctx ends (with errAbandoned).
func (w *Writer) submit(ctx context.Context, items []item) {
	for _, it := range items {
		it.job.left.Store(int32(len(it.rows)))
		if len(it.rows) == 0 {
			it.job.done(nil)
		}
	}
	for _, chunk := range plan(items, w.cfg.BatchRows, int(w.cfg.BatchBytes)) {
		select {
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			for _, p := range chunk {
				p.job.settle(errAbandoned)
			}
			continue
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() { <-w.sem }()
			w.write(ctx, chunk)
		}()
	}
}

// plan groups rows by table and partition, in order of first appearance,
// and cuts each group into chunks of at most maxRows rows and maxBytes
// (estimated; a single larger row makes a chunk of its own).
func plan(items []item, maxRows, maxBytes int) [][]pendingRow {
	type key struct{ table, partition string }
	groups := make(map[key][]pendingRow)
	var order []key
	for _, it := range items {
		for _, r := range it.rows {
			k := key{r.table, r.partition}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], pendingRow{it.job, r})
		}
	}
	var chunks [][]pendingRow
	for _, k := range order {
		g := groups[k]
		for len(g) > 0 {
			n, size := 0, 0
			for n < len(g) && n < maxRows && (n == 0 || size+g[n].row.size <= maxBytes) {
				size += g[n].row.size
				n++
			}
			chunks = append(chunks, g[:n:n])
			g = g[n:]
		}
	}
	return chunks
}

// write writes one chunk, isolating a poison row of a batch by writing the
// rows one by one.
func (w *Writer) write(ctx context.Context, chunk []pendingRow) {
	w.m.inflight.Inc()
	defer w.m.inflight.Dec()
	err := w.writeRetry(ctx, chunk)
	var pe *PoisonError
	if errors.As(err, &pe) && len(chunk) > 1 {
		for i := range chunk {
			chunk[i].job.settle(w.writeRetry(ctx, chunk[i:i+1]))
		}
		return
	}
	for _, p := range chunk {
		p.job.settle(err)
	}
}

// writeRetry sends the chunk until it succeeds, fails for good (a
// *PoisonError) or ctx ends (errAbandoned).
func (w *Writer) writeRetry(ctx context.Context, chunk []pendingRow) error {
	bo := newBackoff(w.retry)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.exec(ctx, chunk)
		w.m.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			w.m.addRows(chunk[0].row.table, len(chunk))
			w.failing.Store(0)
			return nil
		}
		if ctx.Err() != nil {
			return errAbandoned
		}
		class := Classify(err)
		if class == Poison {
			w.log.Warn("cassandra refused a row; its message will be dead-lettered",
				"table", chunk[0].row.table, "rows", len(chunk), "err", err)
			return &PoisonError{Err: err}
		}
		w.m.incRetry(class)
		w.failing.CompareAndSwap(0, time.Now().UnixNano())
		if w.logNow() {
			lvl := slog.LevelWarn
			if class == Setup {
				lvl = slog.LevelError
			}
			w.log.Log(ctx, lvl, "cassandra write failed; retrying", "table", chunk[0].row.table,
				"rows", len(chunk), "attempt", attempt, "class", class, "connection", isConnError(err), "err", err,
				"similar_failures_not_logged", w.unlogged.Swap(0))
		} else {
			w.unlogged.Add(1)
		}
		if sleep(ctx, bo.Next()) != nil {
			return errAbandoned
		}
	}
}

func (w *Writer) exec(ctx context.Context, chunk []pendingRow) error {
	stmt := w.inserts[chunk[0].row.table]
	if len(chunk) == 1 {
		return w.session.Query(stmt, chunk[0].row.values...).ExecContext(ctx)
	}
	b := w.session.Batch(gocql.UnloggedBatch)
	for _, p := range chunk {
		b.Query(stmt, p.row.values...)
	}
	return b.ExecContext(ctx)
}

// Wait blocks until every write started so far has settled.
func (w *Writer) Wait() { w.wg.Wait() }

// failingFor is how long writes have been failing without a success.
func (w *Writer) failingFor(now time.Time) time.Duration {
	if t := w.failing.Load(); t != 0 {
		return now.Sub(time.Unix(0, t))
	}
	return 0
}

// Write upserts the rows of the events and waits until they are written. It
// retries transient failures until ctx ends. It is the sink's write path
// without Pulsar, for tools, tests and benchmarks.
func (w *Writer) Write(ctx context.Context, evs ...*event.Event) error {
	items := make([]item, 0, len(evs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, e := range evs {
		payload, err := event.Marshal(e)
		if err != nil {
			return err
		}
		n, err := event.Unmarshal(payload)
		if err != nil {
			return err
		}
		rows, err := deriveRows(n, payload, w.ttl)
		if err != nil {
			return err
		}
		wg.Add(1)
		id := fmt.Sprintf("%s/%s/%d", e.Gateway, e.Stream, e.Seq)
		items = append(items, item{job: &job{done: func(err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
				mu.Unlock()
			}
			wg.Done()
		}}, rows: rows})
	}
	w.submit(ctx, items)
	wg.Wait()
	return errors.Join(errs...)
}
