package natsq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Ordered delivery (a target's order = "fifo") on JetStream, shared by
// every gateway on the stream. RATIONALE.md "Ordered delivery" has why.
//
// An ordered delivery is published on its key's subject
// S.q.<target>.<key token> (32 hex digits of the SHA-256 of the order key:
// any key makes a valid token of one size; the whole-target sequence is
// the empty key's), an unordered one on S.q.<target> as before. The
// target's one consumer filters both, so messages still go to one gateway
// at a time, in stream order.
//
// Work-queue retention removes a message once acked, so the head of a
// key, the delivery to attempt next, is the lowest-sequence message still
// stored on its subject: one "first message on this subject" get answers
// it. Claim hands out an ordered message only if it is that head. A
// retried head goes back with NakWithDelay and stays stored, so it stays
// the head and its key waits until it is acked or dead-lettered. Only
// heads are handed out and a message is held by one gateway at a time, so
// at most one delivery per key is in flight across all gateways.
//
// A fetched message that is not its key's head waits here, held (its lease
// renewed like a claimed one's) until it is the head; then the next Claim
// hands it out at once. Only its lease (the fetch's reply subject) and
// metadata are kept, not its body: the get that finds it is the head
// returns the body. The gateway that acks or dead-letters a head says so
// to all (core NATS, S.fifo.<target>.<key token>): their waiting message
// of that key is checked at their next claim, and the target's lane is
// woken. Every waiting key is also checked once an AckWait, in case that
// word was lost. What waits is bounded (waitPerKey, waitMax), the lowest
// sequences of a key kept: past that a non-head goes back to the stream
// with NakWithDelay, from parkMin doubling at each return up to parkMax.
const (
	hOrder = "Hookgate-Order" // on a dead letter: its key token, so a replay rejoins the key

	waitMax = 65536 // non-heads this gateway holds, all keys (~250 bytes each)
	parkMin = time.Second
	parkMax = 30 * time.Second
)

// waitPerKey is how many non-heads of one key this gateway holds (a
// variable for tests).
var waitPerKey = 8192

// fifo is one engine's waiting non-heads.
type fifo struct {
	once  sync.Once
	id    string        // payload of this gateway's words, to skip its own
	words atomic.Uint64 // heads ended so far, heard or here (see wait)

	mu        sync.Mutex
	keys      map[string]map[string]*keyWait // target -> work subject -> waiting
	held      int
	claimedAt map[string]time.Time // each waiting target's last Claim here
	recent    map[string]uint64    // heads ended of keys none waits for yet (flag), by subject
	sweptAt   time.Time            // every key last flagged (tendWaiting)
}

// keyWait is one key's waiting messages on this gateway.
type keyWait struct {
	check bool      // the head may have moved: ask at the next Claim
	gone  uint64    // the last head said to have ended (acked or dead)
	msgs  []waiting // ascending stream sequence
}

type waiting struct {
	msg     *replyMsg
	seq     uint64
	touched time.Time
}

// keyToken is the subject token of an order key.
func keyToken(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:16])
}

// subjectOf is d's work subject: its key's when ordered.
func (n *names) subjectOf(d *delivery.Delivery) string {
	if !d.Ordered {
		return n.workSubject(d.Target)
	}
	return n.workSubject(d.Target) + "." + keyToken(d.OrderKey)
}

// keyOf is the key token of a work subject; "" for an unordered one.
func (n *names) keyOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, n.workPrefix)
	if !ok {
		return ""
	}
	_, key, _ := strings.Cut(rest, ".")
	return key
}

// wordSubject is where a head's end is said: S.fifo.<target>.<key>.
func (n *names) wordSubject(workSubject string) string {
	return n.work + ".fifo." + strings.TrimPrefix(workSubject, n.workPrefix)
}

// parkDelay is how long a non-head that cannot wait here goes back to the
// stream, by how many times it was delivered.
func parkDelay(delivered uint64) time.Duration {
	d := parkMin
	for i := uint64(1); i < delivered && d < parkMax; i++ {
		d *= 2
	}
	return min(d, parkMax)
}

// headOf is the first message stored on subject; nil when there is none.
func (e *Engine) headOf(subject string) (*jetstream.RawStreamMsg, error) {
	return e.firstFrom(1, subject)
}

// firstFrom is the first message stored on subject at or after seq; nil
// when there is none.
func (e *Engine) firstFrom(seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	m, err := e.work.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

func seqOf(m *jetstream.RawStreamMsg) uint64 {
	if m == nil {
		return 0
	}
	return m.Sequence
}

// notHead reports whether m, fetched for target, is an ordered message
// that is not its key's head, in which case it now waits here or went
// back to the stream, and is not to be handed out. heads caches, for one
// fetch, the head found for each subject: a later message of that subject
// is not its head either.
func (e *Engine) notHead(m jetstream.Msg, meta *jetstream.MsgMetadata, target string, now time.Time, heads *map[string]uint64) bool {
	subject := m.Subject()
	if e.n.keyOf(subject) == "" {
		return false
	}
	seq := meta.Sequence.Stream
	words := e.fifo.words.Load()
	head, known := (*heads)[subject]
	if !known || head >= seq {
		hm, err := e.headOf(subject)
		if err != nil {
			// Not known: not handed out. Back for a short while.
			e.log.Warn("queue: nats: head of an ordered key not found; the delivery waits", "target", target, "seq", seq, "err", err)
			_ = m.NakWithDelay(parkMin)
			return true
		}
		head = seqOf(hm)
		if *heads == nil {
			*heads = make(map[string]uint64)
		}
		(*heads)[subject] = head
	}
	switch {
	case head == seq:
		return false
	case head == 0 || head > seq:
		// m is no longer stored: acked or dead-lettered after this copy
		// was handed to us (a lease that ran out). Nothing to send.
		_ = m.Ack()
		return true
	}
	e.wait(target, subject, &replyMsg{nc: e.nc, timeout: e.opts.Timeout, subject: subject, reply: m.Reply(), meta: meta}, seq, now, words)
	return true
}

// wait holds non-head m until it is its key's head, or sends it back to
// the stream for a while when this gateway holds enough: of one key, the
// lowest sequences wait, the next to be heads. words is the count of
// heads ended before m's head was looked up: a word since, which may have
// been about m's key before m waited here, has its key checked again.
func (e *Engine) wait(target, subject string, m *replyMsg, seq uint64, now time.Time, words uint64) {
	e.fifo.once.Do(func() { e.listen() })
	f := &e.fifo
	f.mu.Lock()
	kw := f.keys[target][subject]
	if f.held >= waitMax || e.closed.Load() {
		f.mu.Unlock()
		_ = m.NakWithDelay(parkDelay(m.meta.NumDelivered))
		return
	}
	if kw != nil && len(kw.msgs) >= waitPerKey {
		last := &kw.msgs[len(kw.msgs)-1]
		if last.seq < seq {
			f.mu.Unlock()
			_ = m.NakWithDelay(parkDelay(m.meta.NumDelivered))
			return
		}
		// m is nearer the head: it waits, the last one goes back.
		back := last.msg
		kw.msgs = kw.msgs[:len(kw.msgs)-1]
		f.held--
		defer func() { _ = back.NakWithDelay(parkDelay(back.meta.NumDelivered)) }()
	}
	if kw == nil {
		if f.keys == nil {
			f.keys = make(map[string]map[string]*keyWait)
		}
		if f.keys[target] == nil {
			f.keys[target] = make(map[string]*keyWait)
			if f.claimedAt == nil {
				f.claimedAt = make(map[string]time.Time)
			}
			f.claimedAt[target] = now
		}
		kw = &keyWait{gone: f.recent[subject]}
		f.keys[target][subject] = kw
	}
	i := len(kw.msgs)
	for i > 0 && kw.msgs[i-1].seq > seq {
		i--
	}
	kw.msgs = append(kw.msgs, waiting{})
	copy(kw.msgs[i+1:], kw.msgs[i:])
	kw.msgs[i] = waiting{msg: m, seq: seq, touched: now}
	f.held++
	if f.words.Load() != words {
		kw.check = true
	}
	f.mu.Unlock()
}

// listen subscribes to the other gateways' words that a head ended.
func (e *Engine) listen() {
	e.fifo.id = nuid.Next()
	if _, err := e.nc.Subscribe(e.n.work+".fifo.>", e.heard); err != nil {
		// Waiting keys are still checked at each renewal round.
		e.log.Warn("queue: nats: not told when ordered deliveries move on; they wait up to a lease-renewal round", "err", err)
	}
}

// heard is another gateway's word that the head of a key ended: its
// payload is the gateway's id and the head's stream sequence.
func (e *Engine) heard(m *nats.Msg) {
	from, seq, _ := strings.Cut(string(m.Data), " ")
	if from == e.fifo.id || e.closed.Load() {
		return
	}
	gone, _ := strconv.ParseUint(seq, 10, 64)
	rest := strings.TrimPrefix(m.Subject, e.n.work+".fifo.")
	tt, _, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	target, ok := untoken(tt)
	if !ok || !e.flag(target, e.n.workPrefix+rest, gone) {
		return
	}
	if e.presence == nil {
		return // a visitor has no lanes
	}
	if fn := e.presence.fn.Load(); fn != nil {
		(*fn)(target) // its lane claims, and gets the new head
	}
}

// flag marks subject's waiting messages to be checked at the next claim,
// and notes gone, a head that ended (0: none); false when none waits here.
func (e *Engine) flag(target, subject string, gone uint64) bool {
	e.fifo.mu.Lock()
	defer e.fifo.mu.Unlock()
	e.fifo.words.Add(1)
	kw := e.fifo.keys[target][subject]
	if kw == nil {
		// A message of this key may be about to wait (see wait): it
		// starts from this. Bounded: cleared when large.
		if gone != 0 {
			if len(e.fifo.recent) >= 4096 || e.fifo.recent == nil {
				e.fifo.recent = make(map[string]uint64)
			}
			e.fifo.recent[subject] = max(e.fifo.recent[subject], gone)
		}
		return false
	}
	kw.check = true
	kw.gone = max(kw.gone, gone)
	return true
}

// ended is called when ls, acked or dead-lettered, left the stream: if
// it was ordered, the next of its key is the head now, here or on another
// gateway.
func (e *Engine) ended(ls *lease) {
	subject := ls.msg.Subject()
	if e.n.keyOf(subject) == "" {
		return
	}
	var seq uint64
	if meta, err := ls.msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	e.flag(ls.target, subject, seq)
	e.fifo.once.Do(func() { e.listen() })
	_ = e.nc.Publish(e.n.wordSubject(subject), []byte(e.fifo.id+" "+strconv.FormatUint(seq, 10)))
}

// claimWaiting hands out, onto dst, waiting messages of target that are
// their key's head now; it asks only for keys flagged since.
func (e *Engine) claimWaiting(dst []queue.Leased, target string, max int, now time.Time, leaseFor time.Duration, firstErr *error) []queue.Leased {
	f := &e.fifo
	f.mu.Lock()
	if len(f.keys[target]) == 0 {
		f.mu.Unlock()
		return dst
	}
	f.claimedAt[target] = now
	var check []string
	for subject, kw := range f.keys[target] {
		if kw.check && len(check) < max {
			kw.check = false
			check = append(check, subject)
		}
	}
	f.mu.Unlock()
	for _, subject := range check {
		for len(dst) < max {
			f.mu.Lock()
			kw := f.keys[target][subject]
			if kw == nil {
				f.mu.Unlock()
				break
			}
			first, gone := kw.msgs[0], kw.gone
			f.mu.Unlock()
			hm, err := e.headOf(subject)
			if err == nil && hm != nil && hm.Sequence <= gone {
				// Ended, but not yet removed (in a cluster the stream
				// deletes an acked message a moment after the ack): every
				// message of the key up to gone was a head that ended, so
				// the head is the first after it.
				hm, err = e.firstFrom(gone+1, subject)
			}
			if err != nil {
				e.flag(target, subject, 0) // ask again next time
				break
			}
			head := seqOf(hm)
			if head != 0 && head < first.seq {
				break // still behind another
			}
			if !e.unwait(target, subject, first.seq) {
				break
			}
			if head == first.seq {
				first.msg.data, first.msg.header = hm.Data, hm.Header
				dst = e.leaseWaiting(dst, first.msg, target, now, leaseFor, firstErr)
				break
			}
			// No longer stored (see notHead): the next one may be the head.
			_ = first.msg.Ack()
		}
	}
	return dst
}

// unwait takes message seq of subject out of the waiting; false if it is
// not there (Close took it).
func (e *Engine) unwait(target, subject string, seq uint64) bool {
	f := &e.fifo
	f.mu.Lock()
	defer f.mu.Unlock()
	kw := f.keys[target][subject]
	if kw == nil || len(kw.msgs) == 0 || kw.msgs[0].seq != seq {
		return false
	}
	kw.msgs[0] = waiting{}
	kw.msgs = kw.msgs[1:]
	f.held--
	if len(kw.msgs) == 0 {
		delete(f.keys[target], subject)
		if len(f.keys[target]) == 0 {
			delete(f.keys, target)
			delete(f.claimedAt, target)
		}
	}
	return true
}

// leaseWaiting leases m, a waiting message that is its key's head now,
// onto dst, as fetch leases a message it fetched.
func (e *Engine) leaseWaiting(dst []queue.Leased, m jetstream.Msg, target string, now time.Time, leaseFor time.Duration, firstErr *error) []queue.Leased {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return dst
	}
	var l queue.Leased
	if err := queue.DecodeRecord(m.Data(), &l.Delivery); err != nil {
		e.log.Error("queue: nats: a stored delivery cannot be read; it is put aside for an hour", "target", target, "seq", meta.Sequence.Stream, "err", err)
		_ = m.NakWithDelay(time.Hour)
		return dst
	}
	h := m.Headers()
	ls := &lease{msg: m, target: target, route: l.Delivery.Route, id: append([]byte(nil), l.Delivery.ID...), touched: now, until: now.Add(leaseFor)}
	ls.enq, _ = strconv.ParseInt(h.Get(hEnqueued), 10, 64)
	ls.gen, _ = strconv.ParseUint(h.Get(hGen), 10, 64)
	if meta.NumDelivered > 1 {
		if err := e.readAttempts(ls); err != nil {
			_ = m.Nak()
			if *firstErr == nil {
				*firstErr = err
			}
			return dst
		}
	}
	l.Attempts = countAttempts(ls.list)
	l.EnqueuedAt = ls.enq
	l.Ref = e.hold(ls)
	return append(dst, l)
}

// tendWaiting renews the leases of waiting messages, as keepLeases does
// for claimed ones, and flags every waiting key to be checked again, in
// case the word that its head ended was lost. A target this gateway has
// not claimed for an AckWait (its lane stopped: a reload removed the
// target, or it does not send now) gives its waiting messages back, so
// they wait on a gateway that claims.
func (e *Engine) tendWaiting(now time.Time) {
	f := &e.fifo
	var renew, back []*replyMsg
	f.mu.Lock()
	sweep := now.Sub(f.sweptAt) >= e.opts.AckWait
	if sweep {
		f.sweptAt = now
	}
	for target, keys := range f.keys {
		if now.Sub(f.claimedAt[target]) > e.opts.AckWait {
			for _, kw := range keys {
				for _, w := range kw.msgs {
					back = append(back, w.msg)
				}
				f.held -= len(kw.msgs)
			}
			delete(f.keys, target)
			delete(f.claimedAt, target)
			continue
		}
		for _, kw := range keys {
			kw.check = kw.check || sweep
			for i := range kw.msgs {
				if now.Sub(kw.msgs[i].touched) >= e.opts.AckWait/2 {
					kw.msgs[i].touched = now
					renew = append(renew, kw.msgs[i].msg)
				}
			}
		}
	}
	f.mu.Unlock()
	for _, m := range renew {
		_ = m.InProgress()
	}
	for _, m := range back {
		_ = m.Nak()
	}
}

// releaseWaiting gives back every waiting message (Close): another gateway
// takes them at once.
func (e *Engine) releaseWaiting() {
	f := &e.fifo
	f.mu.Lock()
	keys := f.keys
	f.keys, f.held, f.claimedAt = nil, 0, nil
	f.mu.Unlock()
	for _, k := range keys {
		for _, kw := range k {
			for _, w := range kw.msgs {
				_ = w.msg.Nak()
			}
		}
	}
}

// oldWorkSubjects reports whether have is the work stream's subjects
// before ordered delivery (S.q.*) and want its subjects now (S.q.>): the
// stream is then updated in place, which only widens what it takes.
func oldWorkSubjects(have, want []string) bool {
	return len(have) == 1 && len(want) == 1 && strings.HasSuffix(want[0], ".>") &&
		have[0] == strings.TrimSuffix(want[0], ">")+"*"
}

// replyMsg is a waiting message as this gateway keeps it: its lease is
// the reply subject of the fetch that handed it over (acks, naks and
// progress go there, as jetstream.Msg sends them), its body and headers
// are filled in from the get that found it is the head. It implements
// jetstream.Msg, so a lease holds it like a fetched message.
type replyMsg struct {
	nc             *nats.Conn
	timeout        time.Duration
	subject, reply string
	meta           *jetstream.MsgMetadata
	data           []byte
	header         nats.Header
}

func (m *replyMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }
func (m *replyMsg) Data() []byte                              { return m.data }
func (m *replyMsg) Headers() nats.Header                      { return m.header }
func (m *replyMsg) Subject() string                           { return m.subject }
func (m *replyMsg) Reply() string                             { return m.reply }
func (m *replyMsg) Ack() error                                { return m.nc.Publish(m.reply, []byte("+ACK")) }
func (m *replyMsg) Nak() error                                { return m.nc.Publish(m.reply, []byte("-NAK")) }
func (m *replyMsg) InProgress() error                         { return m.nc.Publish(m.reply, []byte("+WPI")) }
func (m *replyMsg) Term() error                               { return m.nc.Publish(m.reply, []byte("+TERM")) }

func (m *replyMsg) TermWithReason(reason string) error {
	return m.nc.Publish(m.reply, []byte("+TERM "+reason))
}

func (m *replyMsg) NakWithDelay(delay time.Duration) error {
	return m.nc.Publish(m.reply, []byte(`-NAK {"delay": `+strconv.FormatInt(delay.Nanoseconds(), 10)+`}`))
}

// DoubleAck acks and waits for the server to confirm it.
func (m *replyMsg) DoubleAck(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	_, err := m.nc.RequestWithContext(ctx, m.reply, []byte("+ACK"))
	return err
}

var _ jetstream.Msg = (*replyMsg)(nil)
