package dispatch

import "golang.org/x/time/rate"

// divideRate divides the target's rate limit among the gateways that
// deliver from a shared queue, so that N gateways together send at most
// rate_limit a second (and bursts of at most burst), as one would. The
// count comes from the engine (queue.Shared.Gateways, a heartbeat each
// gateway keeps); when a gateway joins or leaves, the others adjust at
// their next claim, so for a few seconds the sum can be off by one
// gateway's share. Breakers are per gateway: each one judges the target
// from its own attempts, which is what a breaker protecting one process's
// workers needs; max_conns is per gateway too.
func (l *lane) divideRate() {
	if l.limiter == nil || l.d.shared == nil {
		return
	}
	n := max(l.d.shared.Gateways(), 1)
	if n == l.share {
		return
	}
	l.share = n
	l.limiter.SetLimit(rate.Limit(l.cfg.RateLimit / float64(n)))
	l.limiter.SetBurst(max(l.cfg.Burst/n, 1))
}
