package natsq

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/gateway/queue"
)

// cache keeps what the servers said about the queue for cacheFor: Stats
// and Fill serve /metrics scrapes and the admin API, Health serves /readyz
// probes, and none of them may turn into a request per call.
type cache struct {
	// One lock each, so a slow Stats refresh (many targets) never holds
	// up Fill or Health.
	mu      sync.Mutex
	statsAt time.Time
	stats   map[string]queue.TargetStats

	fillMu sync.Mutex
	fillAt time.Time
	fill   queue.Fill

	healthMu  sync.Mutex
	healthAt  time.Time
	healthErr error
}

func (c *cache) invalidate() {
	c.mu.Lock()
	c.statsAt = time.Time{}
	c.mu.Unlock()
	c.fillMu.Lock()
	c.fillAt = time.Time{}
	c.fillMu.Unlock()
}

func (c *cache) health(check func() error) error {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	if time.Since(c.healthAt) < cacheFor {
		return c.healthErr
	}
	c.healthErr = check()
	c.healthAt = time.Now()
	return c.healthErr
}

// Fill is the work stream against the budget: its messages and bytes
// (every gateway's deliveries), cached for a second.
func (e *Engine) Fill() queue.Fill {
	e.cache.fillMu.Lock()
	defer e.cache.fillMu.Unlock()
	if time.Since(e.cache.fillAt) >= cacheFor && !e.closed.Load() {
		ctx, cancel := e.ctx()
		info, err := e.work.Info(ctx)
		cancel()
		if err == nil {
			e.cache.fill = queue.Fill{Depth: int(info.State.Msgs), Bytes: int64(info.State.Bytes)}
		}
		e.cache.fillAt = time.Now()
	}
	f := e.cache.fill
	f.MaxDepth, f.MaxBytes = e.opts.MaxDepth, e.opts.MaxBytes
	return f
}

// Stats describes every target with a consumer or pending deliveries on
// the stream. The figures come from the servers, so every gateway shows
// the same, except Leased (this gateway's held messages):
//
//   - Depth: the target's messages in the work stream (waiting, held by
//     any gateway, or waiting for a retry or a not-before).
//   - Bytes: an estimate, Depth times the stream's average message size:
//     JetStream counts bytes per stream, not per subject.
//   - OldestAge: from the enqueue time of the target's first message.
//   - Dead: the target's dead letters.
//
// They are cached for a second; a refresh costs one request for the
// stream, one for the consumers, one per target with deliveries and, when
// there are dead letters, one per target for their count (countTarget: a
// consumer created once per target, then only asked).
func (e *Engine) Stats() map[string]queue.TargetStats {
	e.cache.mu.Lock()
	defer e.cache.mu.Unlock()
	if e.cache.stats == nil || time.Since(e.cache.statsAt) >= cacheFor {
		if s, err := e.refreshStats(); err == nil {
			e.cache.stats = s
		} else if !e.closed.Load() {
			e.log.Warn("queue: nats: queue figures not refreshed", "err", err)
		}
		e.cache.statsAt = time.Now()
	}
	out := make(map[string]queue.TargetStats, len(e.cache.stats))
	for name, st := range e.cache.stats {
		out[name] = st
	}
	e.mu.Lock()
	for _, ls := range e.leased {
		st := out[ls.target]
		st.Leased++
		out[ls.target] = st
	}
	e.mu.Unlock()
	return out
}

func (e *Engine) refreshStats() (map[string]queue.TargetStats, error) {
	if e.closed.Load() {
		return nil, queue.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e.opts.Timeout)
	defer cancel()
	info, err := e.work.Info(ctx, jetstream.WithSubjectFilter(e.n.workPrefix+">"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]queue.TargetStats)
	avg := int64(0)
	if info.State.Msgs > 0 {
		avg = int64(info.State.Bytes / info.State.Msgs)
	}
	now := time.Now().UnixNano()
	// A target's subjects: S.q.<target>, and S.q.<target>.<key> for each
	// key of its ordered deliveries (fifo.go); the oldest of each kind is
	// one get, whatever the number of keys.
	var kinds map[string][2]bool // target -> has plain, has ordered
	for subj, n := range info.State.Subjects {
		tok, key, _ := strings.Cut(strings.TrimPrefix(subj, e.n.workPrefix), ".")
		target, ok := untoken(tok)
		if !ok || n == 0 {
			continue
		}
		st := out[target]
		st.Depth += int(n)
		st.Bytes += int64(n) * avg
		out[target] = st
		if kinds == nil {
			kinds = make(map[string][2]bool)
		}
		k := kinds[target]
		k[0], k[1] = k[0] || key == "", k[1] || key != ""
		kinds[target] = k
	}
	for target, k := range kinds {
		st := out[target]
		for i, filter := range [2]string{e.n.workSubject(target), e.n.workSubject(target) + ".*"} {
			if !k[i] {
				continue
			}
			if m, err := e.work.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(filter)); err == nil {
				if enq, _ := strconv.ParseInt(m.Header.Get(hEnqueued), 10, 64); enq > 0 && enq < now {
					st.OldestAge = max(st.OldestAge, time.Duration(now-enq))
				}
			}
		}
		out[target] = st
	}
	// Targets with a consumer but nothing pending may still have dead
	// letters. Those with neither are left out below, as the Pebble store
	// leaves them out after a restart: a consumer stays on the stream for
	// good, and a target renamed or removed from the config must not keep
	// its rows in the admin API and its series in /metrics forever (the
	// dispatcher adds the configured targets itself).
	names := e.work.ConsumerNames(ctx)
	for name := range names.Name() {
		target, ok := untoken(strings.TrimPrefix(name, e.n.consumerNamePrefix))
		if !ok || !strings.HasPrefix(name, e.n.consumerNamePrefix) {
			continue
		}
		if _, ok := out[target]; !ok {
			out[target] = queue.TargetStats{}
		}
	}
	if err := names.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	dinfo, err := e.dead.Info(ctx)
	if err != nil {
		return nil, err
	}
	if dinfo.State.Msgs > 0 {
		for target, st := range out {
			n, err := e.countTarget(ctx, target)
			if err != nil {
				return nil, err
			}
			st.Dead = n
			out[target] = st
		}
	}
	for target, st := range out {
		if st == (queue.TargetStats{}) {
			delete(out, target)
		}
	}
	return out, nil
}

// TargetState returns what SetTargetState last stored for target (nil
// when nothing), from the S_state bucket every gateway shares.
func (e *Engine) TargetState(target string) ([]byte, error) {
	if e.closed.Load() {
		return nil, queue.ErrClosed
	}
	ctx, cancel := e.ctx()
	defer cancel()
	ent, err := e.state.Get(ctx, token(target))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.New("queue: nats: target state of " + strconv.Quote(target) + ": " + err.Error())
	}
	return ent.Value(), nil
}

// SetTargetState stores state for target; empty state deletes it.
func (e *Engine) SetTargetState(target string, state []byte) error {
	if e.closed.Load() {
		return queue.ErrClosed
	}
	ctx, cancel := e.ctx()
	defer cancel()
	var err error
	if len(state) == 0 {
		err = e.state.Purge(ctx, token(target))
	} else {
		_, err = e.state.Put(ctx, token(target), state)
	}
	if err != nil {
		return errors.New("queue: nats: target state of " + strconv.Quote(target) + ": " + err.Error())
	}
	return nil
}

var _ queue.Engine = (*Engine)(nil)
var _ queue.Shared = (*Engine)(nil)
