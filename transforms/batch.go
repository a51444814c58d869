package transforms

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hookgate/hookgate/delivery"
)

// batcher runs the chains of requests that arrive together back to back
// on one goroutine, instead of each between its own request's socket
// reads and writes.
//
// Why: a plugin call's cost under load is mostly refilling the TLB. A Go
// guest's code and data span hundreds of pages, and on machines where
// every kernel entry flushes the TLB (page-table isolation without PCID,
// as on the benchmark VM), each request's system calls leave the next
// call to start cold: the howxm-nps ticket took 8 µs in a loop and 17-19
// µs inside the loaded gateway, and one getppid between calls in process
// already costs it 1.5-3 µs. Calls run back to back share one refill.
// Measured in the load harness against the binary before it, side by
// side (benchmarks/HISTORY.md, thirteenth run): chain3 1.22x the requests
// per second, howxm-nps 1.19x (paired medians of 9 rounds), and a call
// inside the loaded gateway takes about half as long as before.
//
// How: Run queues its job and yields once (runtime.Gosched), so the
// other goroutines the scheduler has ready (requests whose bodies have
// arrived) queue theirs. Coming back, it takes its own job out of the
// queue and runs it, then runs at most as many more as were queued at
// that moment, so a steady stream of arrivals cannot keep it from
// answering its own request. A goroutine that finds its job taken waits
// for the one running it.
//
// What a batch costs is latency: a call may wait for the calls queued
// before it, at most one batch. It never makes a wait unbounded or
// serial: a job is only taken by a goroutine about to run it, and the
// others stay in the queue, where their owners take them back as soon as
// they run. So when a call blocks (waiting for an instance) or runs long,
// the owners of the jobs behind it run their own, in parallel where there
// are cores, each bounded by its own context and the plugin's timeout.
//
// When requests arrive one at a time a yield is pure cost: 85-145 ns
// with nothing else to run, but 16-37 µs on a goroutine locked to its
// thread (a benchmark's), which must hand its P to another thread and
// get it back. So after loneLimit batches in a row that ran only their
// own job, Runs go straight through, except a probe: it yields as
// before, and the Runs that start meanwhile queue too, to notice load
// starting. Stopping at the first lone batch instead cost howxm-nps 4%
// under load (batches of one come between larger ones there). The
// probes are minGap Runs apart at first, twice as far apart after each
// probe that finds itself alone again, at most maxGap; a batch that finds
// company brings them back to minGap. With a probe every 16 Runs, a
// caller alone on a locked thread paid 1.2-1.8 µs per call
// (BenchmarkGuestOverhead/wat, against 170 ns without the batcher); with
// the backoff it pays 16 ns (187 against 171 ns, interleaved). The cost
// of a long gap is that a caller alone for a while notices load only at
// its next probe: at most 4096 Runs, 0.3 s at the harness's rate.
type batcher struct {
	mu    sync.Mutex
	queue []*job // FIFO; a job leaves it when a goroutine takes it to run

	last  atomic.Int32  // jobs the last batch ran
	lone  atomic.Int32  // batches in a row that ran only their own job
	calls atomic.Uint32 // Runs that did not yield since the last probe
	gap   atomic.Uint32 // Runs from one probe to the next; 0 is minGap
}

const (
	loneLimit = 16
	minGap    = 16
	maxGap    = 4096
)

// probeGap is the current distance between probes.
func (b *batcher) probeGap() uint32 {
	if g := b.gap.Load(); g != 0 {
		return g
	}
	return minGap
}

// job is one Run: the chain and its arguments, and where the result goes.
type job struct {
	c        *Chain
	ctx      context.Context
	ev       *delivery.Event
	out      *delivery.Outcome
	err      error
	panicked any // what the job's run panicked with, on another goroutine
	// done receives once when a goroutine other than the owner ran the
	// job (buffered, so the runner never waits for the owner).
	done chan struct{}
}

var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

// run runs c over ev and out, batched with the other Runs that are ready
// at the same time.
func (b *batcher) run(c *Chain, ctx context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	probe := false
	if b.lone.Load() >= loneLimit {
		if b.calls.Add(1) < b.probeGap() {
			return c.run(ctx, ev, out)
		}
		// A probe: the Runs that start while this one yields must queue
		// too, or it could never find company. One more lone batch ends it.
		b.calls.Store(0)
		b.lone.Store(loneLimit - 1)
		probe = true
	}
	j := jobs.Get().(*job)
	j.c, j.ctx, j.ev, j.out = c, ctx, ev, out

	b.mu.Lock()
	b.queue = append(b.queue, j)
	b.mu.Unlock()

	runtime.Gosched()

	b.mu.Lock()
	mine := b.remove(j)
	others := len(b.queue)
	b.mu.Unlock()

	var err error
	var panicked any
	if mine {
		err = c.run(ctx, ev, out)
		if ran := b.drain(others); probe && ran == 1 {
			b.gap.Store(min(2*b.probeGap(), maxGap)) // still alone
		}
	} else {
		<-j.done // another goroutine took it and ran it
		err, panicked = j.err, j.panicked
	}
	*j = job{done: j.done}
	jobs.Put(j)
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// drain runs at most n of the jobs queued by other goroutines, oldest
// first, taking each only as it is about to run, and records and returns
// the batch's size (its own job counts as one).
func (b *batcher) drain(n int) int32 {
	ran := int32(1)
	for range n {
		o := b.pop()
		if o == nil {
			break
		}
		runFor(o)
		ran++
	}
	b.last.Store(ran)
	if ran == 1 {
		b.lone.Add(1)
	} else {
		b.lone.Store(0)
		b.gap.Store(0) // company: probe often again once alone
	}
	return ran
}

// runFor runs another goroutine's job and hands it back. A panic in it is
// handed back too, and raised again in the owner's goroutine: the
// gateway turns a panic into a 500 for the request that caused it, and
// the goroutine running the batch must neither answer for it nor leave
// the owner waiting forever.
func runFor(o *job) {
	defer func() {
		o.panicked = recover()
		o.done <- struct{}{} // o belongs to its owner from here on
	}()
	o.err = o.c.run(o.ctx, o.ev, o.out)
}

// remove takes j out of the queue if it is still there, keeping the order
// of the rest. b.mu is held.
func (b *batcher) remove(j *job) bool {
	for i, q := range b.queue {
		if q == j {
			copy(b.queue[i:], b.queue[i+1:])
			b.queue[len(b.queue)-1] = nil
			b.queue = b.queue[:len(b.queue)-1]
			return true
		}
	}
	return false
}

// pop takes the oldest job out of the queue, or returns nil.
func (b *batcher) pop() *job {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		return nil
	}
	j := b.queue[0]
	b.remove(j)
	return j
}
