package main

import (
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/server"
	"github.com/hookgate/hookgate/transforms"
)

// The names the tests of this package knew when serve's code lived here;
// it now lives in internal/server.

type tryDelivery = server.TryDelivery

const computed = server.Computed

// chainBuilder builds chains as serve does (server.Chains), for the
// hot-path allocation tests and benchmarks.
type chainBuilder struct {
	host *transforms.Host
}

func newChainBuilder(host *transforms.Host) chainBuilder { return chainBuilder{host: host} }

func (b chainBuilder) Build(r config.Route) (gateway.Chain, error) {
	return server.Chains{Host: b.host}.Build(r)
}
