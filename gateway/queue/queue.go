// Package queue is hookgate's durable delivery queue: the deliveries of
// async routes wait here until a worker (gateway/dispatch) has sent them.
//
// Store is the embedded engine, on Pebble in a local directory. Engine is
// the contract it implements, written so a distributed engine (NATS
// JetStream: a work-queue stream, acks, redelivery) can implement it too.
//
// # The contract
//
//  1. Durability. Enqueue returns nil only once every delivery it was given
//     is stored: with sync "always", fsynced (concurrent Enqueue calls share
//     a batch and one fsync: group commit); with sync "batch", held in memory
//     and written 10-20 ms later unless acked by then, and fsynced 30 ms
//     after the write, so a crash or power loss can lose about the last
//     50 ms of acknowledged deliveries in exchange for throughput (Store,
//     stage.go). The deliveries of one Enqueue call are stored atomically:
//     all or none.
//  2. At-least-once. A delivery leaves the queue only through Ack (sent) or
//     Dead (given up; kept as a dead letter until replayed). A worker that
//     crashes, a lease that runs out, or a process that dies makes the
//     delivery ready again, so it may be sent more than once; targets
//     deduplicate by the delivery id, which never changes.
//  3. Leases. Claim hands out ready deliveries (due time reached) under a
//     lease of leaseFor; until it ends nobody else gets them. The holder
//     ends it with exactly one of Ack, Retry (attempt recorded, ready again
//     at due), Dead (attempt recorded, moved to the dead letters) or Release
//     (ready again at once, no attempt recorded: shutdown, open breaker).
//     Leases are not durable: after a restart everything not acked or dead
//     is ready again.
//  4. Ordering is not guaranteed, except within a sequence. Claim prefers
//     the earliest due time, but retries, leases and concurrent workers
//     reorder deliveries freely. Deliveries with Delivery.Ordered set (a
//     target's order = "fifo") form one sequence per target and OrderKey,
//     in enqueue order: Claim hands out only the oldest pending one of a
//     sequence, so at most one per sequence is leased; Retry and Release
//     keep it the oldest (its sequence waits for its due time); Ack and
//     Dead let the next one go. The sequences and their order survive a
//     restart and a crash. A replayed dead letter of a sequence goes to its
//     back. At-least-once still holds: after a crash, deliveries whose ack
//     was lost are sent again first, in their order. Both engines keep
//     sequences (natsq across every gateway on its stream: fifo.go there).
//  5. Budget. Over MaxDepth pending deliveries or MaxBytes pending record
//     bytes, Enqueue fails with an error wrapping ErrFull and stores
//     nothing; ingest answers 503 with Retry-After. Dead letters are not
//     counted against the budget.
//  6. Disk. Enqueue refuses (ErrNoSpace, stores nothing) while the disk
//     has less free space than Options.MinFree, so the store never fills
//     it; Ack, Retry and Dead go on, and it takes deliveries again once a
//     measurement finds space. A write that fails all the same (the disk
//     filled behind the guard, an I/O error) fails the store for good:
//     every write returns ErrFailed and Options.OnFatal is called once, so
//     the process can exit and recover from what is on disk at restart.
//     Health says which, for readiness.
//  7. Replay moves dead letters back to ready with their attempts cleared
//     and their age reset. It never goes through ingest, so the ingest
//     dedupe cannot block it.
//
// # On JetStream
//
// A work-queue stream per queue, a pull consumer per target (filter
// subject per target). Ref names one claim (the engine keeps the message
// under it); Claim is Fetch with
// AckWait = leaseFor; Ack is AckAck (synchronous ack: a double ack is
// harmless); Retry is NakWithDelay(due - now) after storing the attempt;
// Release is Nak; Dead publishes the delivery and its attempts to a
// dead-letter stream, then acks. NextDue may answer "unknown" (false):
// the dispatcher then polls. Budgets map to the stream's MaxMsgs and
// MaxBytes with DiscardNew, whose refusal Enqueue wraps in ErrFull.
package queue

import (
	"errors"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// Engine is the queue contract (see the package documentation).
type Engine interface {
	Enqueue(ds []delivery.Delivery) error
	// Claim appends up to max ready deliveries of target to dst[:0],
	// reusing the buffers of dst's elements, and leases them.
	Claim(dst []Leased, target string, now time.Time, max int, leaseFor time.Duration) ([]Leased, error)
	// NextDue reports when the earliest unleased delivery of target is due.
	NextDue(target string) (time.Time, bool)
	Ack(ref Ref) error
	Retry(ref Ref, due time.Time, a delivery.Attempt) error
	Dead(ref Ref, a delivery.Attempt) error
	Release(ref Ref) error
	DeadList(f Filter, cursor string, limit int) ([]DeadLetter, string, error)
	// Replay moves the dead letter with delivery id back to ready.
	Replay(id string) error
	ReplayAll(f Filter, limit int, progress func(done int)) (int, error)
	DeadCount(f Filter) (int, error)
	Stats() map[string]TargetStats
	// TargetState and SetTargetState keep a few bytes of a target's
	// delivery state (gateway/dispatch's failure clock and disabled
	// switch) across restarts (targetstate.go); Fill is the queue against
	// its budget. On JetStream: a key-value bucket, and the stream's info.
	TargetState(target string) ([]byte, error)
	SetTargetState(target string, state []byte) error
	Fill() Fill
	// Health is nil while the queue takes new deliveries; otherwise why
	// not (low disk, a failed store, the servers unreachable), for
	// /readyz. The error names no path or secret.
	Health() error
	Close() error
}

// Shared is implemented by engines that several gateways use at once
// (gateway/queue/natsq): the dispatcher wakes its lanes when another
// gateway enqueued, and divides each target's rate limit among the
// gateways delivering.
type Shared interface {
	// Notify sets the function the engine calls, from any goroutine,
	// when deliveries for target were enqueued by another gateway (or
	// became ready by other means the dispatcher cannot see). Called once,
	// before the dispatcher starts.
	Notify(func(target string))
	// Gateways is how many gateways deliver from the queue right now,
	// this one included: always at least 1.
	Gateways() int
}

var (
	// ErrFull is wrapped when the queue is over its depth or byte budget.
	// It is delivery.ErrQueueFull, so ingest recognizes it without
	// importing this package.
	ErrFull = delivery.ErrQueueFull
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrNotLeased is returned by Ack, Retry, Dead and Release for a
	// delivery that is not pending (already acked, dead, or unknown).
	ErrNotLeased = errors.New("queue: delivery is not pending")
	// ErrNotFound is returned by Replay for an id that is not a dead letter.
	ErrNotFound = errors.New("queue: no such dead letter")
	// ErrLocked is wrapped by Open when another process (or Store) has the
	// directory open.
	ErrLocked = errors.New("queue: directory in use")
	// ErrBadCursor is wrapped by DeadList for a cursor it did not hand out.
	ErrBadCursor = errors.New("queue: bad cursor")
)

// MaxAttemptBody is how much of a target's answer (Attempt.Body) the
// queue stores with an attempt.
const MaxAttemptBody = 512

// Ref names one queued delivery for the lease calls. It is the engine's
// handle, not the delivery id. Both engines hand out a new Ref with each
// claim, so a holder whose lease ran out cannot act for the worker that
// claimed the delivery after it.
type Ref uint64

// Leased is a claimed delivery.
type Leased struct {
	Ref        Ref
	Delivery   delivery.Delivery
	Attempts   int   // attempts already made (0 on the first send)
	EnqueuedAt int64 // unix nanoseconds; reset by replay

	seq uint64  // the delivery's sequence number in the store
	key [9]byte // Claim's lookup key, kept here so it costs no allocation
	// Where its record was staged when claimed (stage.go), else nil.
	stRec   []byte
	stGen   *generation
	stEpoch uint64
}

// DeadLetter is a delivery that was given up on, with its attempts.
type DeadLetter struct {
	Ref        Ref
	Delivery   delivery.Delivery
	EnqueuedAt time.Time
	DeadAt     time.Time
	// Attempts are the stored ones: At, Duration, Status, Error and up to
	// MaxAttemptBody bytes of Body. Outcome is not stored; each reads back
	// as delivery.AttemptRetry, the last one as delivery.AttemptDead.
	Attempts []delivery.Attempt
}

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	Target string
	Route  string
}

func (f Filter) match(target, route []byte) bool {
	return (f.Target == "" || f.Target == string(target)) && (f.Route == "" || f.Route == string(route))
}

// TargetStats describes one target's queue. gateway/dispatch adds the
// breaker (dispatch.TargetStatus) and writes the JSON the admin API shows.
type TargetStats struct {
	Depth     int           // pending deliveries, leased included
	Leased    int           // being sent right now
	Bytes     int64         // pending record bytes
	OldestAge time.Duration // age of the oldest pending delivery; 0 when none
	Dead      int
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
