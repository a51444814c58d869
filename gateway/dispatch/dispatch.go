// Package dispatch runs hookgate's delivery workers: they take deliveries
// from the durable queue (gateway/queue), send them with the target clients
// (gateway/target), and ack, retry or dead-letter them.
//
// Each target is a lane of its own: a feeder goroutine that claims
// deliveries for its idle workers, all of them in one call to the store,
// and workers (the target's max_conns, or queue.workers) that send them. The feeder is where the target's rate
// limit and circuit breaker act, so a target that is slow, down or
// throttled only ever holds up its own lane.
//
// # Lifecycle
//
//  1. New builds the lanes (nothing runs yet).
//  2. Start starts them; deliveries already in the queue (left by a crash
//     or a restart) go out at once.
//  3. Enqueue stores the deliveries and wakes the lane of each target at
//     once; a short poll catches scheduled deliveries.
//  4. Stop stops claiming, lets attempts in flight finish, releases what
//     was claimed but not sent, and returns; then close the store.
//
// A config reload builds new Lanes (Dispatcher.Lanes) with the new target
// clients and swaps them in (Dispatcher.Swap), which starts them and hands
// back the old ones to Stop; their target clients may close once Stop and
// Wait have returned.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/gateway/target"
)

// Options tune a Dispatcher; zero values are the defaults.
type Options struct {
	Logger  *slog.Logger
	Workers int           // workers per target (config queue.workers); 0 = the target's max_conns
	Poll    time.Duration // how often an idle lane looks for scheduled deliveries; default 1s
	// Recorder is told of every attempt (record.Tee of the log lines, the
	// metrics, the journal). nil: the log lines only.
	Recorder record.Recorder
}

// Dispatcher sends queued deliveries. Its methods are safe for concurrent
// use.
type Dispatcher struct {
	store   queue.Engine
	log     *slog.Logger
	poll    time.Duration
	workers int
	rec     record.Recorder

	mu      sync.Mutex // serializes Start, Stop and Swap
	started bool
	stopped bool
	cur     atomic.Pointer[Lanes]

	ops operations // operational webhooks (ops.go)

	shared queue.Shared        // non-nil when other gateways use the same queue
	ready  readyCounter        // non-nil when the engine counts its backlog in memory (yield.go)
	yield  func()              // runtime.Gosched; tests count the calls
	wait   func(time.Duration) // time.Sleep: the Enqueue sleeps and the core runs deliveries (yield.go); tests count the calls
}

// sharedPoll is how often an idle lane looks for deliveries that became
// due on a queue shared with other gateways.
const sharedPoll = 250 * time.Millisecond

// wakeTarget wakes target's lane: another gateway enqueued for it.
func (d *Dispatcher) wakeTarget(target string) {
	if l := d.cur.Load().lanes[target]; l != nil {
		l.notify()
	}
}

// Lanes are the lanes built from one configuration's targets: one
// generation of delivery workers. Swap replaces them.
type Lanes struct {
	lanes  map[string]*lane
	order  []*lane
	fifo   map[string]string // order_key of each order = "fifo" target (fifo.go)
	ctx    context.Context   // cancelled when the lanes stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// lane is one target's feeder, workers and limits.
type lane struct {
	d       *Dispatcher
	g       *Lanes
	name    string
	cfg     *config.Target
	client  *target.Client
	limiter *rate.Limiter // nil: unlimited
	share   int           // gateways the rate limit is divided among (share.go)
	failing bool          // the last claim failed (claimed logs the change only)
	breaker *breaker
	rec     record.Target
	fail    *failClock    // disable_after's clock (disable.go); shared with the lane it replaced when the config is the same
	wake    chan struct{} // capacity 1: "look again"
	free    chan *job     // idle workers' jobs
	work    chan *job     // claimed, waiting for a worker
	workers int
	// attempts counts the attempts made, for Enqueue to see whether
	// yielding to the lane frees any (yield.go).
	attempts atomic.Uint64
	// quickUntil is, on waitClock, when the lane stops counting as
	// answered quickly: quickAttempt after the end of its latest attempt,
	// if that one succeeded within quickAttempt; 0 after one that failed
	// or took longer. An Enqueue waits for a backlog only before it
	// (yield.go).
	quickUntil atomic.Int64
}

// job is one worker's reusable state.
type job struct {
	ls    []queue.Leased // one claimed delivery
	probe bool           // the half-open breaker's probe
	res   target.Result
	a     delivery.Attempt // the attempt being made: here, the recorder's pointer to it costs no allocation
}

// New builds a dispatcher for the targets in cfgs. A target without a
// client in targets is skipped with a warning; its deliveries wait.
func New(store queue.Engine, targets *target.Set, cfgs []config.Target, opts Options) *Dispatcher {
	d := &Dispatcher{store: store, log: opts.Logger, poll: opts.Poll, workers: opts.Workers, rec: opts.Recorder, yield: runtime.Gosched, wait: time.Sleep}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.rec == nil {
		d.rec = record.Log(d.log, false)
	}
	if d.poll <= 0 {
		d.poll = time.Second
	}
	if sh, ok := store.(queue.Shared); ok {
		// Other gateways enqueue too: their wakes reach this one's lanes
		// through the engine, and each target's rate limit is divided
		// among the gateways delivering (lane.share). Deliveries that
		// become due on a shared queue (a retry's backoff, a not-before)
		// wake nobody, so idle lanes look more often than on a local one.
		d.shared = sh
		if opts.Poll <= 0 {
			d.poll = sharedPoll
		}
		sh.Notify(d.wakeTarget)
	}
	d.ready, _ = store.(readyCounter)
	d.ops.init()
	d.cur.Store(d.Lanes(targets, cfgs))
	return d
}

// Lanes builds lanes for the targets in cfgs with the clients in targets,
// for Swap; nothing runs until then. A target without a client is skipped
// with a warning; its deliveries wait. Lanes never swapped in need no
// clean-up.
func (d *Dispatcher) Lanes(targets *target.Set, cfgs []config.Target) *Lanes {
	g := &Lanes{lanes: make(map[string]*lane), fifo: orderPaths(cfgs)}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	for i := range cfgs {
		c := targets.Get(cfgs[i].Name)
		if c == nil {
			d.log.Warn("dispatch: target has no client; its deliveries wait", "target", cfgs[i].Name)
			continue
		}
		cfg := c.Config()
		workers := d.workers
		if workers <= 0 {
			workers = cfg.MaxConns
		}
		workers = max(workers, 1)
		l := &lane{
			d: d, g: g, name: cfg.Name, cfg: cfg, client: c,
			breaker: newBreaker(cfg.Breaker),
			fail:    new(failClock),
			rec:     d.rec.Target(cfg.Name),
			wake:    make(chan struct{}, 1),
			free:    make(chan *job, workers),
			work:    make(chan *job, workers),
			workers: workers,
		}
		if cfg.RateLimit > 0 {
			l.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(cfg.Burst, 1))
		}
		for range workers {
			l.free <- &job{ls: make([]queue.Leased, 0, 1)}
		}
		g.lanes[l.name] = l
		g.order = append(g.order, l)
	}
	return g
}

func (g *Lanes) start() {
	for _, l := range g.order {
		l.restore() // a disabled target stays disabled (disable.go)
		g.wg.Add(1 + l.workers)
		go l.feed()
		for range l.workers {
			go l.run()
		}
	}
}

// Stop stops claiming and waits for the attempts in flight, or for ctx;
// then Wait waits for them without a limit.
func (g *Lanes) Stop(ctx context.Context) error {
	g.cancel()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dispatch: stop: attempts still in flight: %w", ctx.Err())
	}
}

// Wait waits until every feeder and worker of stopped lanes has returned:
// from then on, nothing uses their target clients.
func (g *Lanes) Wait() { g.wg.Wait() }

// Start starts every lane; later calls do nothing.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.stopped {
		return
	}
	d.started = true
	d.cur.Load().start()
	d.startOps()
}

// Stop stops claiming and waits for attempts in flight to finish; what was
// claimed but not sent is released. When ctx ends first, Stop returns its
// error: the deliveries still in flight stay unacked and go out again after
// a restart (at-least-once).
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	err := d.cur.Load().Stop(ctx)
	if d.started {
		d.stopOps() // after the lanes: what they reported is stored
	}
	return err
}

// Swap makes next the running lanes, started at once if the dispatcher
// is, and returns the lanes it replaced, still running: the caller Stops
// them (claims never hand out what they still hold, so both run safely
// side by side meanwhile). Breaker and rate-limit state start afresh;
// each target's failure clock and disabled switch are handed over from
// the lane it replaces (disable.go, handover). After Stop, Swap returns
// next, unstarted, and an error.
func (d *Dispatcher) Swap(next *Lanes) (*Lanes, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return next, errors.New("dispatch: swap: dispatcher is stopped")
	}
	if d.started {
		next.handover(d.cur.Load())
		next.start()
	}
	return d.cur.Swap(next), nil
}

// Reload swaps in lanes built from targets and cfgs and stops the old
// ones, bounded by ctx.
func (d *Dispatcher) Reload(ctx context.Context, targets *target.Set, cfgs []config.Target) error {
	old, err := d.Swap(d.Lanes(targets, cfgs))
	if err != nil {
		return err
	}
	return old.Stop(ctx)
}

// Enqueue stores ds in the queue and wakes their lanes: the gateway's
// Queue for async routes.
func (d *Dispatcher) Enqueue(ds []delivery.Delivery) error {
	d.yieldToBacklog(d.cur.Load(), ds) // on one P, a backlog's deliveries go first (yield.go)
	d.cur.Load().sequence(ds)          // deliveries to fifo targets join their key's sequence (fifo.go)
	if err := d.store.Enqueue(ds); err != nil {
		return err
	}
	lanes := d.cur.Load().lanes // the lanes a reload swapped in meanwhile, if any
	for i := range ds {
		if l := lanes[ds[i].Target]; l != nil {
			l.notify()
		}
	}
	return nil
}

func (l *lane) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// feed claims deliveries for idle workers, after the breaker allowed it
// and the rate limiter gave a token. It claims for every idle worker in
// one call (one lock of the store, one wake of the feeder for a burst
// of deliveries); one at a time only for the half-open breaker's probe
// and under a rate limit, whose tokens come one by one while the leases
// run.
func (l *lane) feed() {
	defer l.g.wg.Done()
	defer close(l.work)
	ctx := l.g.ctx
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	idle := make([]*job, 0, l.workers)
	// got holds what one claim returned; each element is swapped into an
	// idle job, so the buffers of both circulate and nothing is allocated.
	got := make([]queue.Leased, 0, l.workers)
	for {
		if len(idle) == 0 {
			select {
			case j := <-l.free:
				idle = append(idle, j)
			case <-ctx.Done():
				return
			}
		}
		var probe, ok bool
		if runtime.GOMAXPROCS(0) == 1 {
			// On one P, the worker that just came back readied this
			// goroutine, which Go runs next: it would claim for that
			// worker alone while the others whose answers came in with
			// its own still wait to run. Yielding lets them ack and come
			// back first, so one claim serves them all, their sends go
			// out back to back, and the target takes them in one wake-up
			// (benchmarks/HISTORY.md, twenty-fourth run: async 1.08x at
			// 0.92x the CPU per event). With more Ps they run alongside.
			runtime.Gosched()
		}
		got, probe, ok = l.claim(ctx, got, &idle, timer)
		if !ok {
			return
		}
		for i := range got {
			j := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			j.ls = j.ls[:1]
			j.ls[0], got[i] = got[i], j.ls[0]
			j.probe = probe
			if l.limiter != nil {
				if err := l.limiter.Wait(ctx); err != nil {
					l.d.store.Release(j.ls[0].Ref)
					return
				}
			}
			l.work <- j
		}
	}
}

// claim claims up to one delivery per idle job (taking in the workers
// that became idle meanwhile), waiting as long as needed for at least one;
// false means the dispatcher is stopping.
func (l *lane) claim(ctx context.Context, got []queue.Leased, idle *[]*job, timer *time.Timer) ([]queue.Leased, bool, bool) {
	for {
		if ctx.Err() != nil {
			return got[:0], false, false
		}
	more:
		for len(*idle) < cap(*idle) {
			select {
			case j := <-l.free:
				*idle = append(*idle, j)
			default:
				break more
			}
		}
		l.divideRate()
		now := time.Now()
		ok, probe, wait := l.breaker.allow(now)
		if ok {
			n := len(*idle)
			if probe || l.limiter != nil {
				n = 1
			}
			var err error
			got, err = l.d.store.Claim(got, l.name, now, n, l.leaseFor())
			l.claimed(err)
			if len(got) > 0 {
				return got, probe, true
			}
			l.breaker.unprobe()
			wait = l.d.poll
			if due, ok := l.d.store.NextDue(l.name); ok {
				wait = min(wait, max(due.Sub(now), time.Millisecond))
			}
		}
		timer.Reset(wait)
		select {
		case <-l.wake:
		case <-timer.C:
		case <-ctx.Done():
			return got[:0], false, false
		}
		if !timer.Stop() {
			select { // drain a fire that raced with wake
			case <-timer.C:
			default:
			}
		}
	}
}

// claimed logs a claim that failed, once per outage rather than once a
// poll (a queue on servers that went away fails every claim until they
// are back), and the first claim that works again.
func (l *lane) claimed(err error) {
	switch {
	case err != nil && !l.failing:
		l.failing = true
		l.d.log.Error("dispatch: claim failed; deliveries wait until the queue answers again", "target", l.name, "err", err)
	case err == nil && l.failing:
		l.failing = false
		l.d.log.Info("dispatch: claims work again", "target", l.name)
	}
}

// leaseFor is how long a claimed delivery stays leased: its attempt ends
// within MaxAttempt (token waits and a 401's second send included), and
// under a rate limit it may first wait for a token, at the rate as
// divided among the gateways now (divideRate runs before each claim).
func (l *lane) leaseFor() time.Duration {
	d := l.client.MaxAttempt() + time.Minute
	if l.limiter != nil {
		d += time.Duration(float64(time.Second) / float64(l.limiter.Limit()))
	}
	return d
}

// run is one worker: it sends what the feeder claimed.
func (l *lane) run() {
	defer l.g.wg.Done()
	for j := range l.work {
		if l.g.ctx.Err() != nil {
			// Claimed but not started: give it back rather than start an
			// attempt while shutting down.
			l.d.store.Release(j.ls[0].Ref)
		} else {
			l.send(j)
		}
		l.free <- j
	}
}

// send makes one attempt and acts on its verdict.
func (l *lane) send(j *job) {
	ld := &j.ls[0]
	if j.probe {
		// The probe tests the target, not a pooled connection: after the
		// failures that opened the breaker, those are suspect, and one whose
		// path went silent (no close ever arrives) would only time out and
		// open the breaker again.
		l.client.DropIdle()
	}
	start := time.Now()
	err := l.client.Do(&ld.Delivery, &j.res)
	now := time.Now()
	a := &j.a
	*a = delivery.Attempt{At: start, Duration: now.Sub(start)}
	var v Verdict
	if err != nil {
		v = RetryLater
		a.Error = err.Error()
		a.NoToken = errors.Is(err, target.ErrToken) // its own class in the metrics
	} else {
		a.Status, a.Body = j.res.Status, j.res.Body
		v = Judge(l.cfg.Success, j.res.Status, j.res.Body)
		if v != Delivered {
			a.Error = failure(v, j.res.Status, statusOK(l.cfg.Success.Status, j.res.Status))
		}
	}
	// Only signs that the target is unwell count against the breaker.
	failed := err != nil || (v == RetryLater && Retryable(j.res.Status))
	if !failed && a.Duration < quickAttempt {
		l.quickUntil.Store(waitClock(now) + int64(quickAttempt))
	} else if l.quickUntil.Load() != 0 {
		l.quickUntil.Store(0)
	}
	changed := l.breaker.record(failed, now)
	changed = l.watch(failed, changed, now, a.Error) || changed // disable_after (disable.go)

	n := ld.Attempts + 1 // attempts made, this one included
	l.attempts.Add(1)
	switch v {
	case Delivered:
		err = l.d.store.Ack(ld.Ref)
	case RetryLater:
		wait := retryWait(l.cfg.Retry, n, rand.Float64(), j.res.RetryAfter, now)
		if reason := l.giveUp(n, ld.EnqueuedAt, now.Add(wait)); reason != "" {
			a.Error += "; " + reason
			a.Outcome = delivery.AttemptDead
			err = l.d.store.Dead(ld.Ref, *a)
		} else {
			a.Outcome = delivery.AttemptRetry
			err = l.d.store.Retry(ld.Ref, now.Add(wait), *a)
		}
	case GiveUp:
		a.Outcome = delivery.AttemptDead
		err = l.d.store.Dead(ld.Ref, *a)
	}
	// One line per failed attempt (a success logs nothing), the metrics
	// and the journal: the recorder.
	l.rec.Attempted(&ld.Delivery, n, a)
	if a.Outcome == delivery.AttemptDead {
		l.dead(&ld.Delivery, n, a, ld.EnqueuedAt) // operational webhooks (ops.go)
	}
	*a = delivery.Attempt{} // keep no error text or body past the attempt
	switch {
	case errors.Is(err, queue.ErrClosed):
		// A shutdown that outlasted its timeout closed the queue under
		// this attempt: said once per delivery, since it goes out again.
		l.d.log.Warn("dispatch: the queue closed before this attempt was recorded; the delivery is sent again after the restart",
			"target", l.name, "id", string(ld.Delivery.ID))
	case err != nil:
		l.d.log.Error("dispatch: queue update failed; the delivery may be sent again", "target", l.name, "err", err)
	}
	if v != Delivered || changed || l.cfg.Order == config.OrderFIFO {
		// A retry or a breaker change may need the feeder's attention; so
		// does a delivered head of a sequence, whose next one is ready now.
		l.notify()
	}
}

// giveUp says why retrying is over ("" if it is not): attempts exhausted,
// or the next attempt would come after max_age.
func (l *lane) giveUp(attempts int, enqueued int64, next time.Time) string {
	p := l.cfg.Retry
	maxAttempts := p.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = config.DefaultRetryMaxAttempts
	}
	if attempts >= maxAttempts {
		return "gave up after " + strconv.Itoa(attempts) + " attempts (max_attempts)"
	}
	if p.MaxAge > 0 && next.Sub(time.Unix(0, enqueued)) > p.MaxAge {
		return "gave up: next attempt would be past max_age " + p.MaxAge.String()
	}
	return ""
}

func failure(v Verdict, status int, statusFine bool) string {
	if statusFine {
		return "status " + strconv.Itoa(status) + ": body check failed"
	}
	if v == RetryLater {
		return "status " + strconv.Itoa(status) + ": will retry"
	}
	return "status " + strconv.Itoa(status) + ": refused"
}

// BreakerState reports the state of target's breaker ("" for an unknown
// target).
func (d *Dispatcher) BreakerState(target string) string {
	if l := d.cur.Load().lanes[target]; l != nil {
		return l.breaker.State()
	}
	return ""
}
