package queue

import "github.com/cockroachdb/pebble/v2"

// appendAckDeletes adds to b the deletes of delivery seq, acked after
// attempts failed attempts.
//
// The record, the pending state of a delivery never retried and each
// attempt are written exactly once, so they are removed with
// SingleDelete: when the delete meets the write it deletes (in the
// memtable, or later in a compaction), both disappear, where a plain
// delete leaves a tombstone that the flush writes to L0 and compactions
// carry down the levels. A pending state rewritten by a retry gets a
// plain Delete: a single delete cancels only the latest write and would
// let an older one come back. A replayed delivery's pending state is
// written again after dead-lettering removed the first one with a plain
// Delete (dead.go, writeDead); Pebble allows a single delete of a key
// written once since a plain delete, so its ack may single-delete it.
func appendAckDeletes(b *pebble.Batch, seq uint64, attempts int) {
	dk, pk := keyOf(kindRecord, seq), keyOf(kindPending, seq)
	b.SingleDelete(dk[:], nil)
	if attempts == 0 {
		b.SingleDelete(pk[:], nil)
	} else {
		b.Delete(pk[:], nil)
	}
	for n := 0; n < attempts; n++ {
		ak := attemptKeyOf(seq, n)
		b.SingleDelete(ak[:], nil)
	}
}
