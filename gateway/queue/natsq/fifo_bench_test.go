package natsq

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// BenchmarkOrderedClaimAck is BenchmarkClaimAck (16 per Claim, as a lane
// with 16 idle workers claims) for unordered deliveries and for ordered
// ones in 16 keys or in one (the whole target): the cost of fifo on NATS,
// a head check (one get from the stream) per ordered delivery, and for
// one key one delivery per claim.
func BenchmarkOrderedClaimAck(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys int // 0: unordered
	}{{"plain", 0}, {"keys=16", 16}, {"keys=1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := natstest.Start(b)
			e := openEngine(b, []string{s.URL()}, Options{})
			const chunk = 512
			ds := make([]delivery.Delivery, chunk)
			for i := 0; i < b.N; i += chunk {
				for j := range ds {
					ds[j] = dlv(fmt.Sprintf("oc%d.%d", i, j), "crm", "r", "{}")
					if bc.keys > 0 {
						ds[j].Ordered, ds[j].OrderKey = true, fmt.Appendf(nil, "k%d", (i+j)%bc.keys)
					}
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
		})
	}
}
