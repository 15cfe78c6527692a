// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

package internal

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar/internal/compression"
	"github.com/apache/pulsar-client-go/pulsar/internal/crypto"
	pb "github.com/apache/pulsar-client-go/pulsar/internal/pulsar_proto"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// decodeBatch parses a flushed batch frame: the send command and the
// batch's message metadata.
func decodeBatch(t *testing.T, fb *FlushBatch) (*pb.CommandSend, *pb.MessageMetadata) {
	t.Helper()
	b := fb.BatchData.ReadableSlice()
	cmdSize := binary.BigEndian.Uint32(b[4:8])
	var cmd pb.BaseCommand
	if err := proto.Unmarshal(b[8:8+cmdSize], &cmd); err != nil {
		t.Fatal(err)
	}
	rest := b[8+cmdSize:]
	if binary.BigEndian.Uint16(rest[:2]) != magicCrc32c {
		t.Fatalf("no checksum magic")
	}
	rest = rest[6:]
	mdSize := binary.BigEndian.Uint32(rest[:4])
	var md pb.MessageMetadata
	if err := proto.Unmarshal(rest[4:4+mdSize], &md); err != nil {
		t.Fatal(err)
	}
	return cmd.Send, &md
}

func newTestBatch(t *testing.T, builder BatcherBuilderProvider) BatchBuilder {
	t.Helper()
	b, err := builder(1000, 1<<20, 5<<20, "p", 1, pb.CompressionType_ZSTD, compression.Default,
		NewBufferPool(), NewMetricsProvider(2, map[string]string{}, prometheus.NewRegistry()),
		log.DefaultNopLogger(), crypto.NewNoopEncryptor())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addSeq(t *testing.T, b BatchBuilder, seq uint64, orderingKey string) {
	t.Helper()
	var gen uint64
	md := &pb.SingleMessageMetadata{PayloadSize: proto.Int32(1), SequenceId: proto.Uint64(seq), PartitionKey: proto.String("k")}
	if orderingKey != "" {
		md.OrderingKey = []byte(orderingKey)
	}
	if !b.Add(md, &gen, []byte("x"), nil, nil, time.Time{}, nil, false, false, 0, 0) {
		t.Fatalf("Add(%d) refused", seq)
	}
}

func TestBatchCarriesHighestSequenceID(t *testing.T) {
	b := newTestBatch(t, NewBatchBuilder)
	for s := uint64(5); s <= 9; s++ {
		addSeq(t, b, s, "gw-1")
	}
	send, md := decodeBatch(t, b.Flush())
	if send.GetSequenceId() != 5 || send.HighestSequenceId == nil || send.GetHighestSequenceId() != 9 || send.GetNumMessages() != 5 {
		t.Errorf("send command: sequence_id %d highest_sequence_id %v num_messages %d, want 5, 9, 5",
			send.GetSequenceId(), send.HighestSequenceId, send.GetNumMessages())
	}
	if md.GetSequenceId() != 5 || md.GetHighestSequenceId() != 9 || string(md.GetOrderingKey()) != "gw-1" {
		t.Errorf("metadata: sequence_id %d highest_sequence_id %d ordering_key %q, want 5, 9, gw-1",
			md.GetSequenceId(), md.GetHighestSequenceId(), md.GetOrderingKey())
	}

	// The container is reused: the next batch has its own range.
	addSeq(t, b, 10, "")
	send, md = decodeBatch(t, b.Flush())
	if send.GetSequenceId() != 10 || send.GetHighestSequenceId() != 10 || md.GetHighestSequenceId() != 10 || md.OrderingKey != nil {
		t.Errorf("second batch: %v / %v", send, md)
	}
}

func TestKeyBasedBatchesCarryHighestSequenceID(t *testing.T) {
	b := newTestBatch(t, NewKeyBasedBatchBuilder)
	for s := uint64(1); s <= 6; s++ {
		addSeq(t, b, s, []string{"a", "b"}[s%2])
	}
	for _, fb := range b.FlushBatches() {
		send, _ := decodeBatch(t, fb)
		// key a holds 2, 4, 6 and key b 1, 3, 5: overlapping ranges, which
		// is why external sequence IDs and key-based batching do not mix.
		if h := send.GetHighestSequenceId(); h != send.GetSequenceId()+4 {
			t.Errorf("batch from %d: highest %d, want %d", send.GetSequenceId(), h, send.GetSequenceId()+4)
		}
	}
}

func TestBatchStockWireFormat(t *testing.T) {
	SetHighestSequenceID = false
	defer func() { SetHighestSequenceID = true }()
	b := newTestBatch(t, NewBatchBuilder)
	for s := uint64(1); s <= 3; s++ {
		addSeq(t, b, s, "")
	}
	send, md := decodeBatch(t, b.Flush())
	if send.HighestSequenceId != nil || md.HighestSequenceId != nil || send.GetSequenceId() != 1 {
		t.Errorf("with SetHighestSequenceID off: %v / %v, want the stock format (sequence_id 1 only)", send, md)
	}
}
