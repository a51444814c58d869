package queue

import (
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// benchEvent is one event's deliveries: two targets, a 1 KiB body.
func benchEvent() []delivery.Delivery {
	a := testDelivery("evt_01J9ZQ3V8K2M4N6P8R0T2V4X6Z.0", "crm", "howxm")
	a.Body = make([]byte, 1024)
	b := testDelivery("evt_01J9ZQ3V8K2M4N6P8R0T2V4X6Z.1", "survey", "howxm")
	b.Body = a.Body
	return []delivery.Delivery{a, b}
}

// BenchmarkEnqueue reports events/s for each sync policy, from one
// goroutine and from many (RunParallel, where group commit shares fsyncs).
// Deliveries are drained in the background so the store stays small.
func BenchmarkEnqueue(b *testing.B) {
	for _, sync := range []string{SyncAlways, SyncBatch} {
		for _, parallel := range []bool{false, true} {
			name := sync + "/sequential"
			if parallel {
				name = sync + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				s := openTest(b, b.TempDir(), Options{Sync: sync})
				defer s.Close()
				stop := make(chan struct{})
				done := make(chan struct{})
				go drain(s, stop, done)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				if parallel {
					b.SetParallelism(benchParallelism) // ingest has many connections in flight
					b.RunParallel(func(pb *testing.PB) {
						ev := benchEvent()
						for pb.Next() {
							if err := s.Enqueue(ev); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					ev := benchEvent()
					for i := 0; i < b.N; i++ {
						if err := s.Enqueue(ev); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
				close(stop)
				<-done
			})
		}
	}
}

func drain(s *Store, stop, done chan struct{}) {
	defer close(done)
	var ls []Leased
	for {
		select {
		case <-stop:
			return
		default:
		}
		n := 0
		for _, target := range []string{"crm", "survey"} {
			ls, _ = s.Claim(ls, target, time.Now(), 256, time.Minute)
			for i := range ls {
				s.Ack(ls[i].Ref)
			}
			n += len(ls)
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// BenchmarkClaimAck is the worker side: claim one, ack it.
func BenchmarkClaimAck(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()[:1]
	ls := make([]Leased, 0, 1)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := s.Enqueue(ev); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ls, _ = s.Claim(ls, "crm", time.Now(), 1, time.Minute)
		if len(ls) != 1 {
			b.Fatal("nothing claimed")
		}
		s.Ack(ls[0].Ref)
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU per delivery since cpu0, the
// untimed Enqueue included: an Ack's commit can move Pebble's log writer
// into or out of the timed part (acks.go yields to it), which wall time
// per op counts and CPU does not.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/delivery")
}

// BenchmarkClaimAckBusy is BenchmarkClaimAck while 128 other deliveries
// are leased, as with a target's 128 workers all sending: a claim must
// not cost more with more leases held.
func BenchmarkClaimAckBusy(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()[:1]
	for range 128 {
		if err := s.Enqueue(ev); err != nil {
			b.Fatal(err)
		}
	}
	if held, _ := s.Claim(nil, "crm", time.Now(), 128, time.Hour); len(held) != 128 {
		b.Fatalf("leased %d, want 128", len(held))
	}
	ls := make([]Leased, 0, 1)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := s.Enqueue(ev); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ls, _ = s.Claim(ls, "crm", time.Now(), 1, time.Minute)
		if len(ls) != 1 {
			b.Fatal("nothing claimed")
		}
		s.Ack(ls[0].Ref)
	}
	reportCPU(b, cpu0)
}

// benchParallelism is goroutines per CPU in the parallel Enqueue
// benchmarks: ingest has many connections in flight, and the more commits
// wait together, the more each fsync carries.
var benchParallelism = 16

// cpuTime is the process's user+system CPU time: a benchmark's CPU per
// event counts the store's background work (the log's fsyncs, flushes)
// and the kernel's, which wall time per op hides when they overlap.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEnqueueLarge is a burst of large events (1 MiB bodies, the
// default max_body, to two targets) from many senders, drained as it
// goes: how often the memtables fill decides whether Enqueue waits for
// Pebble's flushes (memTableSize, memTableStopWrites).
func BenchmarkEnqueueLarge(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{Sync: SyncAlways})
	defer s.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go drain(s, stop, done)
	body := make([]byte, 1<<20)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.SetParallelism(benchParallelism)
	b.RunParallel(func(pb *testing.PB) {
		ev := benchEvent()
		ev[0].Body, ev[1].Body = body, body
		for pb.Next() {
			if err := s.Enqueue(ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
	close(stop)
	<-done
}

// BenchmarkClaim is one claim of one delivery, its record decoded from
// the ring of recent records ("recent", as when the target keeps up) or
// read back from Pebble ("pebble": the ring emptied after the enqueues,
// as after a restart or a backlog larger than the ring). Deliveries are
// enqueued a thousand at a time with the timer stopped; the ack is timed
// too, as a claim never goes without one.
func BenchmarkClaim(b *testing.B) {
	for _, from := range []string{"recent", "pebble"} {
		b.Run(from, func(b *testing.B) {
			s := openTest(b, b.TempDir(), Options{Sync: SyncBatch})
			defer s.Close()
			ev := benchEvent()[:1]
			ev[0].Body = make([]byte, 2048)
			ls := make([]Leased, 0, 1)
			left := 0
			b.ReportAllocs()
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					for range 1000 {
						if err := s.Enqueue(ev); err != nil {
							b.Fatal(err)
						}
					}
					if from == "pebble" {
						s.recent = newRecent()
					}
					left = 1000
					b.StartTimer()
				}
				ls, _ = s.Claim(ls, "crm", time.Now(), 1, time.Minute)
				if len(ls) != 1 {
					b.Fatal("nothing claimed")
				}
				if err := s.Ack(ls[0].Ref); err != nil {
					b.Fatal(err)
				}
				left--
			}
			if from == "recent" && s.recent.hits == 0 {
				b.Fatal("no claim was served from the ring")
			}
		})
	}
}

// BenchmarkClaimBacklog drains a backlog that has outgrown the memtables:
// 40,000 deliveries of 2 KB (80 MB), flushed to sstables and gone from the
// ring of recent records, as after a target's outage or when deliveries
// fall behind ingest for long. Workers claim together (dispatch's feeder
// claims for every idle worker), so claims take up to 16 at a time; an op
// is one delivery claimed and acked.
func BenchmarkClaimBacklog(b *testing.B) {
	const backlog, batch = 40000, 16
	s := openTest(b, b.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()[:1]
	ev[0].Body = make([]byte, 2048)
	ls := make([]Leased, 0, batch)
	var got []Leased
	left := 0
	b.ReportAllocs()
	for b.Loop() {
		if len(got) == 0 {
			if left == 0 {
				b.StopTimer()
				for range backlog {
					if err := s.Enqueue(ev); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.db.Flush(); err != nil {
					b.Fatal(err)
				}
				s.recent = newRecent()
				left = backlog
				b.StartTimer()
			}
			var err error
			ls, err = s.Claim(ls, "crm", time.Now(), min(batch, left), time.Minute)
			if err != nil || len(ls) == 0 {
				b.Fatalf("claimed %d: %v", len(ls), err)
			}
			got = ls
		}
		if err := s.Ack(got[0].Ref); err != nil {
			b.Fatal(err)
		}
		got = got[1:]
		left--
	}
}

// BenchmarkOpenBacklog is a restart behind a backlog: 40,000 deliveries
// of 2 KB pending, flushed to sstables. Open rebuilds memory from their
// pending states, which are stored with the records (RATIONALE.md, "One
// key per delivery"), so it reads the backlog's records; an op is one
// Open and Close of the store.
func BenchmarkOpenBacklog(b *testing.B) {
	const backlog = 40000
	dir := b.TempDir()
	s := openTest(b, dir, Options{Sync: SyncBatch})
	ev := benchEvent()[:1]
	ev[0].Body = make([]byte, 2048)
	for range backlog {
		if err := s.Enqueue(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s := openTest(b, dir, Options{Sync: SyncBatch})
		if st := s.Stats()["crm"]; st.Depth != backlog {
			b.Fatalf("%d pending after Open, want %d", st.Depth, backlog)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/backlog*1000, "ns/delivery")
}
