package smoke

import (
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/test/testenv"
)

// TestCassandraRoundTrip creates a keyspace and a table, writes a row and
// reads it back.
func TestCassandraRoundTrip(t *testing.T) {
	addr := testenv.Cassandra(t)
	c := gocql.NewCluster(addr)
	c.Port = mustPort(t, testenv.CassandraPort())
	c.Consistency = gocql.One
	c.Timeout = 20 * time.Second // schema changes are slow on a small machine
	c.ConnectTimeout = 10 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(s.Close) // after the keyspace is dropped (cleanups run last-in first-out)

	ks := unique("smoke_")
	if err := s.Query(`CREATE KEYSPACE ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`).Exec(); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Query(`DROP KEYSPACE IF EXISTS ` + ks).Exec(); err != nil {
			t.Errorf("drop keyspace: %v", err)
		}
	})
	if err := s.Query(`CREATE TABLE ` + ks + `.events (gateway text, stream text, seq bigint, at timestamp, body blob,
		PRIMARY KEY ((gateway, stream), seq))`).Exec(); err != nil {
		t.Fatalf("create table: %v", err)
	}

	at := time.Now().UTC().Truncate(time.Millisecond)
	body := []byte{0xa1, 0x01, 0x02, 0x00, 0xff}
	if err := s.Query(`INSERT INTO `+ks+`.events (gateway, stream, seq, at, body) VALUES (?, ?, ?, ?, ?)`,
		"gw-1", "scans", int64(42), at, body).Exec(); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var (
		gotAt   time.Time
		gotBody []byte
	)
	if err := s.Query(`SELECT at, body FROM `+ks+`.events WHERE gateway = ? AND stream = ? AND seq = ?`,
		"gw-1", "scans", int64(42)).Scan(&gotAt, &gotBody); err != nil {
		t.Fatalf("select: %v", err)
	}
	if !gotAt.Equal(at) || string(gotBody) != string(body) {
		t.Fatalf("read back (%v, %x), want (%v, %x)", gotAt, gotBody, at, body)
	}
}
