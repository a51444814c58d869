package transforms

import (
	"context"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"testing"

	"github.com/hookgate/hookgate/delivery"
)

// BenchmarkGuestCold is what a call costs when the caches are cold, as
// they are in the gateway: between two calls of one plugin, a request's
// HTTP parsing, forwarding and the kernel's network stack run on the same
// core and evict the guest's code and data. Before each call it writes
// `evict` bytes of unrelated memory, or (evict=syscall) enters the kernel
// once, which on a machine with page-table isolation and no PCID flushes
// the TLB as every syscall of a request does; the call alone is timed,
// and the median per call is reported as call-ns (ns/op includes the
// eviction).
//
//	go test ./transforms -run XXX -bench BenchmarkGuestCold -count 6 | tee out
//	benchstat -col /evict -filter .unit:call-ns out
//
// A guest whose call-ns grows much with evict spends its time on cache
// misses, not on instructions: the in-process figure then understates
// what the plugin costs under load.
func BenchmarkGuestCold(b *testing.B) {
	want := map[string]bool{"howxm-nps/ticket": true, "howxm-nps-as/ticket": true, "filter": true, "template/headers": true}
	for _, c := range guestCases(b) {
		if !want[c.name] {
			continue
		}
		wasm := caseWasm(b, c)
		ch := optsChain(b, Options{}, c, wasm)
		for _, evict := range []int{0, 1 << 20, 8 << 20} {
			b.Run(c.name+"/evict="+strconv.Itoa(evict>>20)+"MiB", func(b *testing.B) {
				runCold(b, ch, c.body, evict, false)
			})
		}
		b.Run(c.name+"/evict=syscall", func(b *testing.B) {
			runCold(b, ch, c.body, 0, true)
		})
	}
}

func runCold(b *testing.B, ch *Chain, body []byte, evict int, sys bool) {
	src := guestEvent(body)
	var ev delivery.Event
	var out delivery.Outcome
	ctx := context.Background()
	junk := make([]byte, evict)
	took := make([]int64, 0, 1<<16)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		for i := 0; i < len(junk); i += 64 { // a write per cache line
			junk[i]++
		}
		if sys {
			syscall.Getppid()
		}
		refill(&ev, src)
		out.Reset()
		start := monoNow()
		if err := ch.Run(ctx, &ev, &out); err != nil {
			b.Fatal(err)
		}
		if len(took) < cap(took) {
			took = append(took, monoNow()-start)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if len(took) > 0 {
		b.ReportMetric(float64(took[len(took)/2]), "call-ns")
	}
}

// BenchmarkGuestConcurrent is the batcher's case: 8 callers on one P,
// each entering the kernel once (a stand-in for its request's socket I/O,
// which flushes the TLB here) and then running the chain, with Runs
// batched (production) and each on its own goroutine. ns/op is per Run,
// the system call included.
//
//	go test ./transforms -run XXX -bench BenchmarkGuestConcurrent -count 6 | tee out
//	benchstat -col /batch out
func BenchmarkGuestConcurrent(b *testing.B) {
	want := map[string]bool{"howxm-nps/ticket": true, "filter": true, "template/headers": true}
	for _, c := range guestCases(b) {
		if !want[c.name] {
			continue
		}
		wasm := caseWasm(b, c)
		for _, batch := range []bool{true, false} {
			b.Run(c.name+"/batch="+strconv.FormatBool(batch), func(b *testing.B) {
				setProcs(b, 1)
				ch := optsChain(b, Options{noBatch: !batch}, c, wasm)
				src := guestEvent(c.body)
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var ev delivery.Event
					var out delivery.Outcome
					for pb.Next() {
						syscall.Getppid()
						refill(&ev, src)
						out.Reset()
						if err := ch.Run(context.Background(), &ev, &out); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
