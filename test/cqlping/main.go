// Command cqlping is the readiness probe of test/cassandra.sh: it connects to
// the test Cassandra's CQL port, runs `SELECT release_version FROM
// system.local`, prints the version and exits 0, or prints the error and
// exits 1. Address and port default to the same environment variables as
// the scripts (EDGE_TEST_HOST, EDGE_CASSANDRA_PORT).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	host := flag.String("host", env("EDGE_TEST_HOST", "127.0.0.1"), "Cassandra host")
	port := flag.String("port", env("EDGE_CASSANDRA_PORT", "19042"), "CQL native port")
	timeout := flag.Duration("timeout", 5*time.Second, "overall deadline")
	flag.Parse()
	v, err := ping(*host, *port, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqlping:", err)
		os.Exit(1)
	}
	fmt.Println(v)
}

func ping(host, port string, timeout time.Duration) (string, error) {
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("bad port %q: %w", port, err)
	}
	c := gocql.NewCluster(host)
	c.Port = p
	c.Timeout = timeout
	c.ConnectTimeout = timeout
	c.Consistency = gocql.One
	s, err := c.CreateSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var v string
	if err := s.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v); err != nil {
		return "", err
	}
	return v, nil
}
