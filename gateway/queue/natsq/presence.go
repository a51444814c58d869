package natsq

// Presence: which gateways deliver from a stream, and waking them.
//
// Each gateway puts a heartbeat key in the key-value bucket
// "<stream>_gateways" every presenceBeat; the bucket drops keys older than
// presenceTTL (its max age), so a gateway that died (kill -9, a lost
// machine) drops out within presenceTTL, and one that closes deletes its
// key at once. Every gateway watches the bucket and keeps the count of
// live keys in an atomic: gateways() is called on every rate-limit
// decision, so it only loads it. A key is live while its last heartbeat
// was seen (by this gateway's clock, never compared with another's) less
// than presenceTTL ago.
//
// wake tells the other gateways that deliveries for a target were
// enqueued, so their lanes look at once rather than at their next poll: a
// core-NATS publish on "<stream>.wake.<token of the target name>" (names.go:
// target names may hold '.', a subject token separator), whose payload is the
// sender's gateway id so that it skips its own. Wakes are hints: a lost
// one only delays a delivery to the lane's next poll, so they are fire and
// forget and never block ingest. wake only marks the target pending
// (no allocation once a target has been seen); a goroutine publishes one
// wake per pending target, so a burst of enqueues for one target costs a
// handful of messages, not one each.
//
// The stream's own subjects must not include "<stream>.wake.>", or every
// wake would be stored.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// presenceBeat is how often a gateway renews its heartbeat key.
	presenceBeat = 2 * time.Second
	// presenceTTL is how long a heartbeat counts: three beats, so one
	// slow or lost put does not make a live gateway drop out.
	presenceTTL = 6 * time.Second
)

// presence is one gateway's heartbeat and wake subscription on a stream.
type presence struct {
	nc    *nats.Conn
	kv    jetstream.KeyValue
	id    string // this gateway's heartbeat key, unique among processes
	self  []byte // id, the payload of our wakes
	wake0 string // "<stream>.wake.", the prefix of wake subjects
	log   *slog.Logger
	beat  time.Duration
	ttl   time.Duration

	fn   atomic.Pointer[func(target string)]
	live atomic.Int64 // gateways(): live heartbeat keys, this one included

	mu      sync.Mutex
	targets map[string]*wakeTarget // by target name; only grows (names come from config)
	queue   []*wakeTarget          // pending wakes, in order
	spare   []*wakeTarget          // the sender's previous batch, reused
	kick    chan struct{}          // cap 1: the sender has work

	sub     *nats.Subscription
	stop    chan struct{}
	done    sync.WaitGroup
	closing sync.Once
}

type wakeTarget struct {
	subject string
	pending bool // in p.queue; guarded by p.mu
}

// newPresence creates (or opens) the bucket "<stream>_gateways", puts this
// gateway's first heartbeat and starts watching the others. name is the
// gateway's name ("" uses hostname-pid); a random suffix keeps two
// processes apart even when they share it.
func newPresence(nc *nats.Conn, js jetstream.JetStream, stream, name string, replicas int, log *slog.Logger) (*presence, error) {
	return startPresence(nc, js, stream, name, replicas, log, presenceBeat, presenceTTL)
}

func startPresence(nc *nats.Conn, js jetstream.JetStream, stream, name string, replicas int, log *slog.Logger, beat, ttl time.Duration) (*presence, error) {
	bucket := stream + "_gateways"
	ctx, cancel := context.WithTimeout(context.Background(), 2*dedupeTimeout)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "hookgate gateways delivering from stream " + stream,
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
		// File, like the queue: a memory bucket would be gone after a
		// restart of NATS, and every heartbeat after it would fail.
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("natsq: presence bucket %q: %w", bucket, err)
	}
	if name == "" {
		host, _ := os.Hostname()
		name = host + "-" + strconv.Itoa(os.Getpid())
	}
	id := presenceKey(name)
	p := &presence{
		nc:      nc,
		kv:      kv,
		id:      id,
		self:    []byte(id),
		wake0:   stream + ".wake.",
		log:     log,
		beat:    beat,
		ttl:     ttl,
		targets: make(map[string]*wakeTarget),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	p.live.Store(1)
	if _, err := kv.Put(ctx, id, []byte(name)); err != nil {
		return nil, fmt.Errorf("natsq: presence heartbeat: %w", err)
	}
	p.sub, err = nc.Subscribe(p.wake0+">", p.received)
	if err == nil {
		// The server has the subscription once this returns: wakes
		// published after newPresence reach us.
		err = nc.FlushTimeout(dedupeTimeout)
	}
	if err != nil {
		if p.sub != nil {
			_ = p.sub.Unsubscribe()
		}
		return nil, fmt.Errorf("natsq: wake subscription: %w", err)
	}
	p.done.Add(2)
	go p.heartbeats(name)
	go p.sendWakes()
	return p, nil
}

// notify sets the function called, from the subscription's goroutine,
// with a target another gateway enqueued for. Set it once, before use;
// wakes that arrive before it is set are dropped.
//
// A nil presence (Options.Visitor) counts one gateway, wakes nobody and
// closes at once.
func (p *presence) notify(fn func(target string)) {
	if p != nil {
		p.fn.Store(&fn)
	}
}

// gateways is how many gateways deliver from the stream right now, this
// one included: at least 1.
func (p *presence) gateways() int {
	if p == nil {
		return 1
	}
	return int(p.live.Load())
}

// wake tells the other gateways that deliveries for target were enqueued.
// It never blocks and, once target has been woken before, allocates
// nothing.
func (p *presence) wake(target string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	t := p.targets[target]
	if t == nil {
		t = &wakeTarget{subject: p.wake0 + token(target)}
		p.targets[strings.Clone(target)] = t
	}
	if !t.pending {
		t.pending = true
		p.queue = append(p.queue, t)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default: // the sender already has work and will see this target
	}
}

// close stops the heartbeats and the wake subscription and deletes this
// gateway's key, so the others count it out at once.
func (p *presence) close() {
	if p == nil {
		return
	}
	p.closing.Do(func() {
		close(p.stop)
		p.done.Wait()
		if err := p.sub.Unsubscribe(); err != nil && p.nc.IsConnected() {
			p.log.Warn("natsq: could not stop the wake subscription", "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), dedupeTimeout)
		defer cancel()
		// Not deleted (NATS unreachable): it expires within the bucket's TTL.
		_ = p.kv.Delete(ctx, p.id)
	})
}

// received is the wake subscription's handler.
func (p *presence) received(m *nats.Msg) {
	if string(m.Data) == p.id {
		return // our own wake
	}
	fn := p.fn.Load()
	if fn == nil || len(m.Subject) <= len(p.wake0) {
		return
	}
	target, ok := untoken(m.Subject[len(p.wake0):])
	if !ok {
		return // not a wake of ours
	}
	(*fn)(target)
}

// sendWakes publishes one wake per pending target.
func (p *presence) sendWakes() {
	defer p.done.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		batch := p.pendingWakes()
		for _, t := range batch {
			// An error (disconnected with a full reconnect buffer, or
			// closed) loses a hint, not a delivery: the other gateways'
			// lanes find the deliveries at their next poll.
			_ = p.nc.Publish(t.subject, p.self)
		}
		p.sent(batch)
	}
}

// pendingWakes takes the pending targets; a wake for one of them from now
// on queues it again. Hand the batch back with sent.
func (p *presence) pendingWakes() []*wakeTarget {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.queue
	p.queue = p.spare[:0]
	for _, t := range batch {
		t.pending = false
	}
	return batch
}

// sent keeps batch's array for the next pendingWakes, so that queueing
// wakes allocates nothing in steady state.
func (p *presence) sent(batch []*wakeTarget) {
	clear(batch)
	p.mu.Lock()
	p.spare = batch[:0]
	p.mu.Unlock()
}

// heartbeats renews this gateway's key and counts the live ones from a
// watch of the bucket.
func (p *presence) heartbeats(name string) {
	defer p.done.Done()
	seen := map[string]time.Time{} // other gateways' keys: when their last heartbeat arrived
	tick := time.NewTicker(p.beat)
	defer tick.Stop()
	var w jetstream.KeyWatcher
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	// watched is when the watch last proved alive: started, or delivered
	// our own heartbeat. After a restart of NATS the watch's consumer can
	// take many seconds to come back by itself; one that has missed our
	// own heartbeats for a few beats is stale, and is started again.
	var watched time.Time
	failing := false
	for {
		if w == nil {
			w = p.watch()
			watched = time.Now()
		}
		var updates <-chan jetstream.KeyValueEntry
		if w != nil {
			updates = w.Updates()
		}
		select {
		case <-p.stop:
			return
		case e, ok := <-updates:
			if !ok {
				w = nil // the watch ended (its consumer is gone): start another
				continue
			}
			if e == nil {
				continue // the initial values are all in
			}
			if e.Key() == p.id {
				watched = time.Now()
				continue
			}
			if e.Operation() == jetstream.KeyValuePut {
				seen[e.Key()] = time.Now()
			} else {
				delete(seen, e.Key())
			}
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), p.beat)
			_, err := p.kv.Put(ctx, p.id, []byte(name))
			cancel()
			if err != nil && !failing {
				p.log.Warn("natsq: could not renew this gateway's presence; the others will count it out while this lasts", "err", err)
			} else if err == nil && failing {
				p.log.Info("natsq: presence renewed again")
			}
			failing = err != nil
			if err == nil && w != nil && time.Since(watched) > 3*p.beat {
				_ = w.Stop()
				w = nil
				continue
			}
		}
		now := time.Now()
		for k, at := range seen {
			if now.Sub(at) >= p.ttl {
				delete(seen, k)
			}
		}
		p.live.Store(int64(len(seen) + 1))
	}
}

// watch starts a watch of every key, or returns nil (NATS unreachable:
// the next tick tries again).
func (p *presence) watch() jetstream.KeyWatcher {
	// No deadline of ours: nats.go keeps the context for re-creating the
	// watch's consumer later (after a NATS restart), and bounds each
	// request with its own timeout.
	w, err := p.kv.WatchAll(context.Background())
	if err != nil {
		return nil
	}
	return w
}

// presenceKey is a gateway's heartbeat key: its name with the bytes a KV
// key cannot hold replaced by '_', and a random suffix.
func presenceKey(name string) string {
	var b strings.Builder
	for i := 0; i < len(name) && i < 64; i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(r[:]))
	return b.String()
}
