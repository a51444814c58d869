package dispatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// BenchmarkDeliverOrder is the cost per delivery of order = "fifo"
// against plain delivery, end to end: b.N deliveries of 1 KiB JSON
// enqueued (sync "batch") and sent by 8 workers to a loopback sink that
// only counts. "fifo/100-keys" keys them by customer.uid over 100
// customers; "fifo/one-sequence" has no order_key, so the whole target
// goes one delivery at a time (its rate is one connection's).
func BenchmarkDeliverOrder(b *testing.B) {
	for _, mode := range []string{"plain", "fifo/100-keys", "fifo/one-sequence"} {
		b.Run(mode, func(b *testing.B) {
			s, err := sink.Start("127.0.0.1:0", sink.Options{Discard: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cfg := targetFor("crm", s)
			cfg.MaxConns = 8
			switch mode {
			case "fifo/100-keys":
				cfg.Order, cfg.OrderKey = config.OrderFIFO, "customer.uid"
			case "fifo/one-sequence":
				cfg.Order = config.OrderFIFO
			}
			r := start(b, b.TempDir(), cfg)
			pad := strings.Repeat("x", 960)
			ds := make([]delivery.Delivery, 100)
			for i := range ds {
				ds[i] = del(fmt.Sprintf("evt_bench%08d.0", i), "crm")
				ds[i].Body = fmt.Appendf(nil, `{"customer":{"uid":"cust-%03d"},"pad":%q}`, i, pad)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for sent := 0; sent < b.N; sent += len(ds) {
				n := min(len(ds), b.N-sent)
				if err := r.d.Enqueue(ds[:n]); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.Wait(b.N, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
		})
	}
}
