package natsq

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// BenchmarkEnqueue: one event of one 512-byte delivery per op, stored
// (PubAck) by an in-process single-node server with file storage.
func BenchmarkEnqueue(b *testing.B) {
	body := make([]byte, 512)
	for _, mode := range []string{"sequential", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			s := natstest.Start(b)
			e := openEngine(b, []string{s.URL()}, Options{})
			var n atomic.Int64
			one := func() {
				d := dlv(fmt.Sprintf("b%d.0", n.Add(1)), "crm", "r", "")
				d.Body = body
				if err := e.Enqueue([]delivery.Delivery{d}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			if mode == "parallel" {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						one()
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					one()
				}
			}
		})
	}
}

// BenchmarkClaimAck: claim and ack deliveries, 16 per Claim, as a lane
// with 16 idle workers does.
func BenchmarkClaimAck(b *testing.B) {
	s := natstest.Start(b)
	e := openEngine(b, []string{s.URL()}, Options{})
	const chunk = 512
	ds := make([]delivery.Delivery, chunk)
	for i := 0; i < b.N; i += chunk {
		for j := range ds {
			ds[j] = dlv(fmt.Sprintf("ca%d.%d", i, j), "crm", "r", "{}")
		}
		if err := e.Enqueue(ds[:min(chunk, b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	got := make([]queue.Leased, 0, 16)
	deadline := time.Now().Add(10 * time.Minute)
	for done := 0; done < b.N; {
		var err error
		got, err = e.Claim(got, "crm", time.Now(), 16, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 && time.Now().After(deadline) {
			b.Fatalf("claimed %d of %d", done, b.N)
		}
		for i := range got {
			if err := e.Ack(got[i].Ref); err != nil {
				b.Fatal(err)
			}
		}
		done += len(got)
	}
}
