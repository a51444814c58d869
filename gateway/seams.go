// Package gateway is hookgate's ingest server: it routes each request,
// runs the route's transform chain, and either forwards the deliveries now
// (sync routes) or commits them to the durable queue (async routes).
package gateway

import (
	"context"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dedupe"
)

// Chain runs one route's transform chain over an event. The WASM host
// (transforms.Chain) implements it; gateway never imports wazero.
//
// Run must not keep ev or out after it returns. An error means the event
// could not be transformed (a plugin trapped, timed out, failed); the
// gateway answers the sender 502 and delivers nothing.
type Chain interface {
	Run(ctx context.Context, ev *delivery.Event, out *delivery.Outcome) error
}

// ChainBuilder builds the chain of a route when a configuration is loaded.
// internal/server wires it to the transforms host.
type ChainBuilder interface {
	Build(route config.Route) (Chain, error)
}

// Queue takes the deliveries of async routes. Enqueue returns only once
// every delivery is durably stored (the 202 promise); it returns an error
// wrapping delivery.ErrQueueFull when the queue is over its budget, which
// ingest turns into 503 with Retry-After. *dispatch.Dispatcher is one.
type Queue interface {
	Enqueue(ds []delivery.Delivery) error
}

// Disabled tells a sync forward which targets are disabled: a target
// that failed for its disable_after is not attempted until an operator
// enables it, and that holds for a sync route's forward as for the queue.
// The dispatcher keeps that state (*dispatch.Dispatcher is one); gateway
// never imports it. Disabled is asked once per sync delivery, so it must
// be cheap and allocate nothing.
type Disabled interface {
	Disabled(target string) bool
}

// ErrQueueFull is what ingest looks for (errors.Is) in an Enqueue error to
// answer 503 with Retry-After rather than 503 "unavailable". It is
// delivery.ErrQueueFull, which gateway/queue's ErrFull is.
var ErrQueueFull = delivery.ErrQueueFull

// SharedDedupe keeps routes' dedupe keys where every gateway sharing the
// queue sees them (gateway/queue/natsq's key-value bucket), so a repeat
// that reaches another gateway, or comes after a restart, is still
// caught. Each route's own dedupe.Deduper stays in front of it: a repeat
// this gateway has seen is answered without asking.
//
// The protocol is the Deduper's: Begin claims the key as in flight (the
// claim expires on its own within about a minute, so a gateway that died
// mid-request never turns the sender's retry into a "duplicate" of an
// event that was not stored), then exactly one of Accept (the event was
// accepted: the key lives ttl) or Forget (it was not: the next copy is
// handled afresh). An error means the store could not be asked: ingest
// answers 503 queue_unavailable, and stores nothing.
type SharedDedupe interface {
	Begin(route string, key, eventID []byte) (first []byte, seen dedupe.Seen, err error)
	Accept(route string, key, eventID []byte, ttl time.Duration) error
	Forget(route string, key, eventID []byte) error
}
