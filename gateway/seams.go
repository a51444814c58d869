// Package gateway is hookgate's ingest server: it routes each request,
// runs the route's transform chain, and either forwards the deliveries now
// (sync routes) or commits them to the durable queue (async routes).
package gateway

import (
	"context"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
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

// ErrQueueFull is what ingest looks for (errors.Is) in an Enqueue error to
// answer 503 with Retry-After rather than 503 "unavailable". It is
// delivery.ErrQueueFull, which gateway/queue's ErrFull is.
var ErrQueueFull = delivery.ErrQueueFull
