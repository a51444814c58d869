package natsq

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// consumer returns target's durable pull consumer, creating it on first
// use. Every gateway asks for the same configuration, so creating it is
// idempotent and they all share it.
func (e *Engine) consumer(target string) (jetstream.Consumer, error) {
	e.mu.Lock()
	c := e.consumers[target]
	e.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.work.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:     e.n.consumer(target),
		Description: "hookgate deliveries of target " + target,
		// Ordered deliveries are on S.q.<target>.<key> (fifo.go).
		FilterSubjects: []string{e.n.workSubject(target), e.n.workSubject(target) + ".*"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        e.opts.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  unlimitedAckPending,
		Replicas:       e.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: nats: consumer of target %q: %w", target, err)
	}
	e.mu.Lock()
	e.consumers[target] = c
	e.mu.Unlock()
	return c, nil
}

// consumerGone forgets c, target's consumer, when err says nobody
// serves it: it was removed (by hand, or lost with its store) and the
// next claim creates it again, rather than every claim failing until a
// restart. Creating it is idempotent, so a consumer that only had no
// leader for a moment (a node lost) is merely asked for again.
func (e *Engine) consumerGone(target string, c jetstream.Consumer, err error) bool {
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrConsumerDeleted) &&
		!errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false
	}
	e.mu.Lock()
	if e.consumers[target] == c {
		delete(e.consumers, target)
	}
	e.mu.Unlock()
	return true
}

// Claim fetches up to max of target's ready deliveries without waiting
// for more: the dispatcher waits on its own wake and poll. A message not
// due yet goes back (NakWithDelay until its due time) and is not
// returned. leaseFor bounds how long this gateway keeps renewing the
// lease (keepLeases).
func (e *Engine) Claim(dst []queue.Leased, target string, now time.Time, max int, leaseFor time.Duration) ([]queue.Leased, error) {
	dst = dst[:0]
	if e.closed.Load() {
		return dst, queue.ErrClosed
	}
	if max <= 0 {
		return dst, nil
	}
	c, err := e.consumer(target)
	if err != nil {
		return dst, err
	}
	// A fetch whose every message was put back (not due yet) goes on with
	// another, up to claimScan messages: deliveries ahead in the stream
	// that wait for a route's delay must not make the dispatcher wait a
	// poll for each of them before it reaches those due now. Each waiting
	// delivery is fetched once until its time, so this costs nothing
	// again on later claims.
	nowNs := now.UnixNano()
	var firstErr, fetchErr error
	dst = e.claimWaiting(dst, target, max, now, leaseFor, &firstErr) // ordered ones whose turn came (fifo.go)
	retried := false
	for scanned := 0; len(dst) < max; {
		want := max - len(dst)
		var fetched, putBack int
		dst, fetched, putBack, fetchErr = e.fetch(c, dst, target, want, now, nowNs, leaseFor, &firstErr)
		if fetchErr != nil && fetched == 0 && !retried && e.consumerGone(target, c, fetchErr) {
			// Nobody served the consumer (removed, or not yet ready
			// while another gateway created or updated it): ask for it
			// again and fetch once more, rather than fail this claim.
			retried = true
			if c, err = e.consumer(target); err != nil {
				return dst, err
			}
			continue
		}
		scanned += fetched
		if fetchErr != nil || fetched < want || putBack < fetched || scanned >= claimScan || e.closed.Load() {
			break
		}
	}
	if e.closed.Load() {
		// Close ran meanwhile and gave back what it saw held; these too.
		for i := range dst {
			if ls, _ := e.untake(dst[i].Ref); ls != nil {
				_ = ls.msg.Nak()
			}
		}
		return dst[:0], queue.ErrClosed
	}
	if fetchErr != nil && len(dst) == 0 {
		e.consumerGone(target, c, fetchErr)
		return dst, fmt.Errorf("queue: nats: claim for %q: %w", target, fetchErr)
	}
	if firstErr != nil && len(dst) == 0 {
		return dst, firstErr
	}
	return dst, nil
}

// fetch fetches up to want of target's messages without waiting, leases
// the due ones onto dst and puts back those not due yet (NakWithDelay
// until their time: not an attempt). It returns how many messages came
// and how many of them were put back for not being due; firstErr keeps
// the first failure to read a delivery's attempts.
func (e *Engine) fetch(c jetstream.Consumer, dst []queue.Leased, target string, want int, now time.Time, nowNs int64, leaseFor time.Duration, firstErr *error) ([]queue.Leased, int, int, error) {
	batch, err := c.FetchNoWait(want)
	if err != nil {
		return dst, 0, 0, err
	}
	fetched, putBack := 0, 0
	var heads map[string]uint64 // ordered keys' heads seen in this fetch (fifo.go)
	for m := range batch.Messages() {
		fetched++
		meta, err := m.Metadata()
		if err != nil {
			_ = m.Nak()
			continue
		}
		h := m.Headers()
		if due, _ := strconv.ParseInt(h.Get(hDue), 10, 64); due > nowNs {
			// Not before due: back to the stream until then, on every
			// gateway. This is not an attempt.
			_ = m.NakWithDelay(time.Duration(due - nowNs))
			e.noteDue(target, due)
			putBack++
			continue
		}
		if e.notHead(m, meta, target, now, &heads) {
			// Ordered, and not its key's turn: it waits (fifo.go).
			putBack++
			continue
		}
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, queue.Leased{})
		}
		l := &dst[len(dst)-1]
		if err := queue.DecodeRecord(m.Data(), &l.Delivery); err != nil {
			// Not a record this version reads: park it an hour rather than
			// spin on it, and say so.
			e.log.Error("queue: nats: a stored delivery cannot be read; it is put aside for an hour", "target", target, "seq", meta.Sequence.Stream, "err", err)
			_ = m.NakWithDelay(time.Hour)
			dst = dst[:len(dst)-1]
			continue
		}
		ls := &lease{msg: m, target: target, route: l.Delivery.Route, id: append([]byte(nil), l.Delivery.ID...), touched: now, until: now.Add(leaseFor)}
		ls.enq, _ = strconv.ParseInt(h.Get(hEnqueued), 10, 64)
		ls.gen, _ = strconv.ParseUint(h.Get(hGen), 10, 64)
		if meta.NumDelivered > 1 {
			// Delivered before: attempts may have been recorded. A first
			// delivery (nearly all) costs no read.
			if err := e.readAttempts(ls); err != nil {
				_ = m.Nak()
				dst = dst[:len(dst)-1]
				if *firstErr == nil {
					*firstErr = err
				}
				continue
			}
			if due := listDue(ls.list); due > nowNs {
				// Back before its retry's time (the NakWithDelay that
				// held it was lost): not an attempt, back until then.
				_ = m.NakWithDelay(time.Duration(due - nowNs))
				e.noteDue(target, due)
				dst = dst[:len(dst)-1]
				putBack++
				continue
			}
		}
		l.Attempts = countAttempts(ls.list)
		l.EnqueuedAt = ls.enq
		l.Ref = e.hold(ls)
	}
	return dst, fetched, putBack, batch.Error()
}

func (e *Engine) attemptKey(id []byte) string { return token(string(id)) }

func (e *Engine) readAttempts(ls *lease) error {
	ctx, cancel := e.ctx()
	defer cancel()
	ent, err := e.attempts.Get(ctx, e.attemptKey(ls.id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: nats: attempts of %s: %w", ls.id, err)
	}
	ls.list, ls.rev = ent.Value(), ent.Revision()
	return nil
}

// forgetAttempts removes a delivery's recorded attempts (after Ack or
// Dead), if any were read at Claim. A purge leaves a marker, which the
// bucket drops after attemptsMarkerTTL: a plain delete's marker would stay
// forever, one per retried delivery.
func (e *Engine) forgetAttempts(ls *lease) {
	if ls.rev == 0 {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	if err := e.attempts.Purge(ctx, e.attemptKey(ls.id), jetstream.PurgeTTL(attemptsMarkerTTL)); err != nil {
		e.log.Warn("queue: nats: recorded attempts not removed", "id", string(ls.id), "err", err)
	}
}

// hold records a new claim of ls and returns its Ref.
func (e *Engine) hold(ls *lease) queue.Ref {
	e.mu.Lock()
	e.claims++
	ref := queue.Ref(e.claims)
	e.leased[ref] = ls
	e.mu.Unlock()
	return ref
}

// take removes ref from the held messages; ErrNotLeased if it is not held.
func (e *Engine) take(ref queue.Ref) (*lease, error) {
	if e.closed.Load() {
		return nil, queue.ErrClosed
	}
	return e.untake(ref)
}

func (e *Engine) untake(ref queue.Ref) (*lease, error) {
	e.mu.Lock()
	ls := e.leased[ref]
	delete(e.leased, ref)
	e.mu.Unlock()
	if ls == nil {
		return nil, fmt.Errorf("queue: delivery %d: %w", ref, queue.ErrNotLeased)
	}
	return ls, nil
}

// Ack removes a sent delivery: a synchronous ack, so once it returns no
// gateway will be given the message again.
func (e *Engine) Ack(ref queue.Ref) error {
	ls, err := e.take(ref)
	if err != nil {
		return err
	}
	ctx, cancel := e.ctx()
	defer cancel()
	if err := ls.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("queue: nats: ack %d: %w", ref, err)
	}
	e.forgetAttempts(ls)
	e.ended(ls) // the next of its key, if ordered, may go (fifo.go)
	return nil
}

// Retry records attempt a and makes the delivery ready again at due.
func (e *Engine) Retry(ref queue.Ref, due time.Time, a delivery.Attempt) error {
	ls, err := e.take(ref)
	if err != nil {
		return err
	}
	if err := e.recordAttempt(ls, &a, due.UnixNano()); err != nil {
		// Without the attempt recorded, sending again now would not count
		// it: leave the message to its lease, which ends in AckWait.
		return fmt.Errorf("queue: nats: retry %d: attempt not recorded: %w", ref, err)
	}
	e.noteDue(ls.target, due.UnixNano())
	if d := time.Until(due); d > 0 {
		err = ls.msg.NakWithDelay(d)
	} else {
		err = ls.msg.Nak()
	}
	if err != nil {
		return fmt.Errorf("queue: nats: retry %d: %w", ref, err)
	}
	return nil
}

// recordAttempt appends a to the delivery's attempts in the bucket by
// compare-and-set on the revision Claim read (create when none was
// stored): two gateways that briefly held the same delivery (a lease that
// ran out under a slow attempt) both get their attempt counted, where a
// plain put would let the second overwrite the first, and max_attempts
// overshoot. On a conflict it reads the list again and retries.
func (e *Engine) recordAttempt(ls *lease, a *delivery.Attempt, due int64) error {
	ctx, cancel := e.ctx()
	defer cancel()
	key := e.attemptKey(ls.id)
	list, rev := ls.list, ls.rev
	for try := 0; ; try++ {
		next := appendRetry(list, a, due)
		var err error
		if rev == 0 {
			_, err = e.attempts.Create(ctx, key, next)
		} else {
			_, err = e.attempts.Update(ctx, key, next, rev)
		}
		if err == nil || try == 3 || !(errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err)) {
			return err
		}
		ent, gerr := e.attempts.Get(ctx, key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			list, rev = nil, 0
		case gerr != nil:
			return gerr
		default:
			list, rev = ent.Value(), ent.Revision()
		}
		casPause(ctx, try+1) // a replicated bucket refuses for a moment after a conflict (dedupe.go)
	}
}

// Release ends a lease without an attempt: the delivery is ready again at
// once, for any gateway.
func (e *Engine) Release(ref queue.Ref) error {
	ls, err := e.take(ref)
	if err != nil {
		return err
	}
	if err := ls.msg.Nak(); err != nil {
		return fmt.Errorf("queue: nats: release %d: %w", ref, err)
	}
	return nil
}

// NextDue reports the earliest not-before or retry time this gateway saw
// for target that is still ahead; false when it knows none (the
// dispatcher then polls).
func (e *Engine) NextDue(target string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	due, ok := e.nextDue[target]
	if !ok {
		return time.Time{}, false
	}
	if due <= time.Now().UnixNano() {
		delete(e.nextDue, target)
		return time.Time{}, false
	}
	return time.Unix(0, due), true
}

func (e *Engine) noteDue(target string, due int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.nextDue[target]; !ok || due < cur || cur <= time.Now().UnixNano() {
		e.nextDue[target] = due
	}
}

// keepLeases renews the leases of held messages (InProgress) once they
// are half an AckWait old, until their leaseFor ends; one goroutine for
// the engine, not one per message.
func (e *Engine) keepLeases() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.AckWait / 4)
	defer t.Stop()
	var due []*lease
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		due = due[:0]
		e.mu.Lock()
		for ref, ls := range e.leased {
			switch {
			case now.After(ls.until.Add(e.opts.AckWait)):
				// The lease ran out long ago and the holder never ended
				// it: the message went back to the stream by itself.
				delete(e.leased, ref)
			case now.Before(ls.until) && now.Sub(ls.touched) >= e.opts.AckWait/2:
				due = append(due, ls)
			}
		}
		e.mu.Unlock()
		for _, ls := range due {
			// Renewed only when the server took it: a renewal lost in a
			// reconnect is tried again at the next tick (a quarter of
			// AckWait later), still before the lease runs out.
			if ls.msg.InProgress() == nil {
				e.mu.Lock()
				ls.touched = now
				e.mu.Unlock()
			}
		}
		e.tendWaiting(now) // ordered ones waiting for their turn (fifo.go)
	}
}
