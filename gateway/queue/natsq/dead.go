package natsq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Dead letters live in the stream S_dead, one message per dead letter on
// subject S_dead.<target>.<route>.<delivery id> (names.go): a filter by
// target or route is a subject filter the server applies, and replay by
// id finds its letter by subject, with no index to keep in step.
//
//	payload: 0x01 | enqueued (varint) | dead at (varint) | generation (uvarint) |
//	         record (uvarint len | queue record) | attempts (attempts.go list)
//
// The generation counts replays. The dead letter's Nats-Msg-Id is
// "<id>#<gen>", so a Dead repeated by two gateways (a lease that ran out
// under a slow attempt) keeps one letter; a replayed delivery's work
// message has Nats-Msg-Id "<id>#<gen+1>", which the work stream's
// duplicate window does not take for the first publish of the id.
const deadV1 = 1

func appendDeadPayload(dst []byte, enq, deadAt int64, gen uint64, record, attempts []byte) []byte {
	dst = append(dst, deadV1)
	dst = binary.AppendVarint(dst, enq)
	dst = binary.AppendVarint(dst, deadAt)
	dst = binary.AppendUvarint(dst, gen)
	dst = binary.AppendUvarint(dst, uint64(len(record)))
	dst = append(dst, record...)
	return append(dst, attempts...)
}

type deadPayload struct {
	enq, deadAt int64
	gen         uint64
	record      []byte
	attempts    []byte
}

func decodeDeadPayload(b []byte) (deadPayload, error) {
	if len(b) == 0 || b[0] != deadV1 {
		return deadPayload{}, queue.ErrCorrupt
	}
	r := reader{b: b[1:]}
	p := deadPayload{enq: r.varint(), deadAt: r.varint(), gen: r.uvarint(), record: r.field()}
	if r.bad {
		return deadPayload{}, queue.ErrCorrupt
	}
	p.attempts = r.b
	return p, nil
}

func msgID(id []byte, gen uint64) string {
	return string(id) + "#" + strconv.FormatUint(gen, 10)
}

// Dead records attempt a and moves the delivery to the dead letters: it
// publishes the letter (with every attempt), then acks the work message.
// A crash in between leaves both; the delivery is then sent again, and a
// second Dead is dropped by the dead stream's duplicate window.
func (e *Engine) Dead(ref queue.Ref, a delivery.Attempt) error {
	ls, err := e.take(ref)
	if err != nil {
		return err
	}
	ctx, cancel := e.ctx()
	defer cancel()
	list := appendAttempt(append([]byte(nil), ls.list...), &a)
	m := nats.NewMsg(e.n.deadSubject(ls.target, ls.route, ls.id))
	m.Data = appendDeadPayload(nil, ls.enq, time.Now().UnixNano(), ls.gen, ls.msg.Data(), list)
	m.Header.Set(jetstream.MsgIDHeader, msgID(ls.id, ls.gen))
	if key := e.n.keyOf(ls.msg.Subject()); key != "" {
		m.Header.Set(hOrder, key) // a replay rejoins its key, at the back (fifo.go)
	}
	if _, err := e.js.PublishMsg(ctx, m, jetstream.WithExpectStream(e.n.dead)); err != nil {
		// Not recorded: the delivery stays pending and comes back when its
		// lease ends.
		return fmt.Errorf("queue: nats: dead %d: dead letter not stored: %w", ref, err)
	}
	if err := ls.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("queue: nats: dead %d: stored as a dead letter but not acked, so it may be sent again: %w", ref, err)
	}
	e.forgetAttempts(ls)
	e.ended(ls) // the next of its key, if ordered, may go (fifo.go)
	e.cache.invalidate()
	return nil
}

// deadAt returns the first dead letter matching subject filter at or after
// stream sequence seq; nil, nil when there is none.
func (e *Engine) deadAt(seq uint64, filter string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	m, err := e.dead.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

func (e *Engine) deadLetter(m *jetstream.RawStreamMsg) (queue.DeadLetter, error) {
	p, err := decodeDeadPayload(m.Data)
	if err != nil {
		return queue.DeadLetter{}, err
	}
	dl := queue.DeadLetter{Ref: queue.Ref(m.Sequence), EnqueuedAt: unixTime(p.enq), DeadAt: unixTime(p.deadAt)}
	if err := queue.DecodeRecord(p.record, &dl.Delivery); err != nil {
		return dl, err
	}
	if dl.Attempts, err = decodeAttempts(p.attempts); err != nil {
		return dl, err
	}
	return dl, nil
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// DeadList returns up to limit dead letters matching f, oldest first,
// after cursor ("" for the start); the returned cursor is "" when there
// are no more. A cursor is the dead stream's sequence of the last letter
// returned.
func (e *Engine) DeadList(f queue.Filter, cursor string, limit int) ([]queue.DeadLetter, string, error) {
	if e.closed.Load() {
		return nil, "", queue.ErrClosed
	}
	seq := uint64(1)
	if cursor != "" {
		c, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%w %q: pass the next_cursor of a previous page", queue.ErrBadCursor, cursor)
		}
		seq = c + 1
	}
	if limit <= 0 {
		limit = 100
	}
	filter := e.n.deadFilter(f.Target, f.Route, "")
	var out []queue.DeadLetter
	for {
		m, err := e.deadAt(seq, filter)
		if err != nil {
			return nil, "", fmt.Errorf("queue: nats: dead letters: %w", err)
		}
		if m == nil {
			return out, "", nil
		}
		if len(out) == limit {
			return out, strconv.FormatUint(uint64(out[len(out)-1].Ref), 10), nil
		}
		dl, err := e.deadLetter(m)
		if err != nil {
			return nil, "", fmt.Errorf("queue: nats: dead letter %d: %w", m.Sequence, err)
		}
		out = append(out, dl)
		seq = m.Sequence + 1
	}
}

// DeadCount counts the dead letters matching f.
func (e *Engine) DeadCount(f queue.Filter) (int, error) {
	if e.closed.Load() {
		return 0, queue.ErrClosed
	}
	ctx, cancel := e.ctx()
	defer cancel()
	n, err := e.countDead(ctx, e.n.deadFilter(f.Target, f.Route, ""))
	if err != nil {
		return 0, fmt.Errorf("queue: nats: count dead letters: %w", err)
	}
	return n, nil
}

// countDead counts the dead letters on subjects matching filter, exactly
// (an operator's request, or what is left after a replay): the server
// counts them for a short-lived consumer's NumPending from its subject
// index. The figures, asked for far more often, use countTarget.
func (e *Engine) countDead(ctx context.Context, filter string) (int, error) {
	info, err := e.dead.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	if filter == e.n.deadFilter("", "", "") {
		return int(info.State.Msgs), nil
	}
	c, err := e.dead.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, err
	}
	n := int(c.CachedInfo().NumPending)
	_ = e.dead.DeleteConsumer(ctx, c.CachedInfo().Name)
	return n, nil
}

// countTarget counts target's dead letters for the figures, with the
// target's counting consumer on the dead stream (names.go): a durable
// that never receives anything, whose NumPending the server keeps up to
// date as letters come and go (a new letter is counted a moment after
// its publish was acknowledged). It is created once and then only asked,
// because the figures (Stats) count every target's letters at each
// refresh, on every gateway: a consumer created and deleted each time
// would be two changes of the cluster's metadata per target per refresh,
// and a walk of the target's letters.
func (e *Engine) countTarget(ctx context.Context, target string) (int, error) {
	e.mu.Lock()
	c := e.counters[target]
	e.mu.Unlock()
	if c != nil {
		info, err := c.Info(ctx)
		if err == nil {
			return int(info.NumPending), nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, err
		}
		// Removed behind our back (by hand, or with the stream): again.
	}
	c, err := e.dead.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       e.n.deadCounter(target),
		Description:   "hookgate: counts the dead letters of target " + target,
		FilterSubject: e.n.deadFilter(target, "", ""),
		AckPolicy:     jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      e.cfg.Replicas,
	})
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	e.counters[target] = c
	e.mu.Unlock()
	return int(c.CachedInfo().NumPending), nil
}

// Replay moves the dead letter of delivery id back to the work stream,
// due now, its attempts cleared and its age reset.
func (e *Engine) Replay(id string) error {
	if e.closed.Load() {
		return queue.ErrClosed
	}
	m, err := e.deadAt(1, e.n.deadFilter("", "", id))
	if err != nil {
		return fmt.Errorf("queue: nats: replay %q: %w", id, err)
	}
	if m == nil {
		return fmt.Errorf("queue: replay %q: %w", id, queue.ErrNotFound)
	}
	if err := e.replay(m); err != nil {
		return fmt.Errorf("queue: nats: replay %q: %w", id, err)
	}
	return nil
}

// ReplayAll replays the dead letters matching f, oldest first, at most
// limit (<= 0: all); progress (if not nil) is called every 256 and at the
// end with the number replayed so far. Letters that die again while it
// runs are not replayed again by the same call.
func (e *Engine) ReplayAll(f queue.Filter, limit int, progress func(done int)) (int, error) {
	if e.closed.Load() {
		return 0, queue.ErrClosed
	}
	ctx, cancel := e.ctx()
	info, err := e.dead.Info(ctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("queue: nats: replay: %w", err)
	}
	last := info.State.LastSeq
	filter := e.n.deadFilter(f.Target, f.Route, "")
	done, reported := 0, 0
	for seq := uint64(1); seq <= last && (limit <= 0 || done < limit); {
		m, err := e.deadAt(seq, filter)
		if err != nil {
			return done, fmt.Errorf("queue: nats: replay: %w", err)
		}
		if m == nil || m.Sequence > last {
			break
		}
		if err := e.replay(m); err != nil {
			return done, fmt.Errorf("queue: nats: replay: %w", err)
		}
		done++
		seq = m.Sequence + 1
		if progress != nil && done%256 == 0 {
			progress(done)
			reported = done
		}
	}
	if progress != nil && done > reported {
		progress(done)
	}
	return done, nil
}

// replay publishes dead letter m's delivery to the work stream, then
// deletes the letter. A crash in between leaves both: the delivery may
// then be replayed, and sent, twice.
func (e *Engine) replay(m *jetstream.RawStreamMsg) error {
	p, err := decodeDeadPayload(m.Data)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", m.Sequence, err)
	}
	var d delivery.Delivery
	if err := queue.DecodeRecord(p.record, &d); err != nil {
		return fmt.Errorf("dead letter %d: %w", m.Sequence, err)
	}
	gen := p.gen + 1
	subject := e.n.workSubject(d.Target)
	if key := m.Header.Get(hOrder); key != "" {
		subject += "." + key // ordered: the back of its key (fifo.go)
	}
	w := nats.NewMsg(subject)
	w.Data = p.record
	w.Header.Set(jetstream.MsgIDHeader, msgID(d.ID, gen))
	w.Header.Set(hEnqueued, strconv.FormatInt(time.Now().UnixNano(), 10))
	w.Header.Set(hGen, strconv.FormatUint(gen, 10))
	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, w, jetstream.WithExpectStream(e.n.work)); err != nil {
		if isFull(err) {
			return fmt.Errorf("the queue is over its budget: %w", queue.ErrFull)
		}
		return err
	}
	if err := e.dead.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("replayed, but the dead letter was not removed (it may be replayed again): %w", err)
	}
	e.presence.wake(d.Target)
	e.cache.invalidate()
	return nil
}
