package dispatch

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// Breaker states, as /admin/queue shows them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
	// BreakerDisabled: the target failed for its disable_after and was
	// disabled (disable.go); nothing is claimed until it is enabled.
	BreakerDisabled = "disabled"
)

// breaker is a target's circuit breaker. Closed, it lets everything
// through and counts consecutive failures; at cfg.Failures it opens. Open,
// nothing is claimed (so no attempt is burned) until cfg.Cooldown has
// passed; then one probe goes out (half-open). The probe's success closes
// it, its failure opens it for another cool-down.
//
// Disabled (auto-disable, disable.go) overrides all of that: nothing is
// claimed, whatever the breaker's config, until enable; enable closes it
// afresh. It is an atomic so the hot path pays one load for it, behind a
// pointer so that a reload with the same config shares it between the
// old lane and the new one (disable.go, handover).
type breaker struct {
	off      *atomic.Bool
	mu       sync.Mutex
	cfg      config.Breaker
	state    string
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(cfg config.Breaker) *breaker {
	if cfg.Failures > 0 && cfg.Cooldown <= 0 {
		cfg.Cooldown = config.DefaultBreakerCooldown
	}
	return &breaker{cfg: cfg, state: BreakerClosed, off: new(atomic.Bool)}
}

// allow reports whether a delivery may be claimed now; if not, wait is how
// long until asking again makes sense (a probe's answer also wakes the
// lane). probe marks the one attempt the half-open state lets through: the
// caller must report its result with record, or call unprobe if it sent
// nothing.
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	if b.off.Load() {
		// enable wakes the lane; until then there is nothing to ask.
		return false, false, time.Hour
	}
	if b.cfg.Failures <= 0 {
		return true, false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true, false, 0
	case BreakerOpen:
		if left := b.cfg.Cooldown - now.Sub(b.openedAt); left > 0 {
			return false, false, left
		}
		b.state = BreakerHalfOpen
		b.probing = true
		return true, true, 0
	default: // half-open
		if b.probing {
			return false, false, b.cfg.Cooldown
		}
		b.probing = true
		return true, true, 0
	}
}

// unprobe gives back a probe that found nothing to send.
func (b *breaker) unprobe() {
	b.mu.Lock()
	if b.state == BreakerHalfOpen {
		b.probing = false
	}
	b.mu.Unlock()
}

// record counts the result of one attempt. Only target-health failures
// count: transport errors and retryable statuses, not a 4xx or a failed
// body check, which prove the target is up. It reports whether the state
// changed.
func (b *breaker) record(failed bool, now time.Time) (changed bool) {
	if b.cfg.Failures <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.state
	defer func() { changed = b.state != before }()
	switch b.state {
	case BreakerClosed:
		if !failed {
			b.failures = 0
			return
		}
		b.failures++
		if b.failures >= b.cfg.Failures {
			b.state, b.openedAt = BreakerOpen, now
		}
	case BreakerHalfOpen:
		b.probing = false
		if failed {
			b.state, b.openedAt = BreakerOpen, now
			return
		}
		b.state, b.failures = BreakerClosed, 0
	case BreakerOpen:
		// Answers to attempts sent before it opened change nothing.
	}
	return // changed is set by the deferred comparison
}

// disable stops every claim until enable.
func (b *breaker) disable() { b.off.Store(true) }

// enable lifts disable and closes the breaker with no failures counted:
// the target starts over.
func (b *breaker) enable() {
	b.mu.Lock()
	b.state, b.failures, b.probing = BreakerClosed, 0, false
	b.mu.Unlock()
	b.off.Store(false)
}

func (b *breaker) disabled() bool { return b.off.Load() }

func (b *breaker) State() string {
	if b.off.Load() {
		return BreakerDisabled
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
