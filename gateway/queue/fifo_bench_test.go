package queue

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkOrderedCycle is the store's cost per delivery of order =
// "fifo" against plain delivery: enqueue one delivery (sync "batch", so
// the fsync does not hide the difference), claim it, ack it. "fifo/one-key"
// is a whole-target sequence; "fifo/new-key" starts and ends a sequence
// per delivery, as with a key per customer; "fifo/backlog" keeps 1,000
// deliveries of one key waiting behind the head, so each ack makes the
// next one ready.
func BenchmarkOrderedCycle(b *testing.B) {
	for _, mode := range []string{"plain", "fifo/one-key", "fifo/new-key", "fifo/backlog"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b, b.TempDir(), Options{Sync: SyncBatch})
			defer s.Close()
			ev := benchEvent()[:1]
			ev[0].Ordered = mode != "plain"
			ev[0].OrderKey = make([]byte, 0, 32)
			if mode == "fifo/backlog" {
				for range 1000 {
					if err := s.Enqueue(ev); err != nil {
						b.Fatal(err)
					}
				}
			}
			ls := make([]Leased, 0, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "fifo/new-key" {
					ev[0].OrderKey = strconv.AppendInt(append(ev[0].OrderKey[:0], "cust-"...), int64(i), 10)
				}
				if err := s.Enqueue(ev); err != nil {
					b.Fatal(err)
				}
				ls, _ = s.Claim(ls, "crm", time.Now(), 1, time.Minute)
				if len(ls) != 1 {
					b.Fatal("nothing claimed")
				}
				s.Ack(ls[0].Ref)
			}
		})
	}
}
