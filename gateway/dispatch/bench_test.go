package dispatch

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/internal/sink"
)

// BenchmarkDeliver is the end-to-end delivered rate: b.N deliveries
// enqueued (sync "batch"), sent by the workers to a loopback sink that only
// counts. allocs/op includes the in-process sink's.
func BenchmarkDeliver(b *testing.B) {
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("max_conns=%d", conns), func(b *testing.B) {
			s, err := sink.Start("127.0.0.1:0", sink.Options{Discard: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cfg := targetFor("crm", s)
			cfg.MaxConns = conns
			r := start(b, b.TempDir(), cfg)
			ds := make([]delivery.Delivery, 100)
			for i := range ds {
				ds[i] = del(fmt.Sprintf("evt_bench%08d.0", i), "crm")
				ds[i].Body = make([]byte, 1024)
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
			if _, err := s.Wait(b.N, time.Minute); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
		})
	}
}

// cpuTime is the process's user+system CPU time: CPU per delivery counts
// every goroutine (the store's, the workers', the in-process sink's) and
// the kernel's work for them, which wall time per op hides when they
// overlap.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
