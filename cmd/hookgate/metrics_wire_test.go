package main

import (
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/journal"
	"github.com/hookgate/hookgate/gateway/metrics"
)

// wireIngest hands the gateway its metrics and journal, as serve does.
func wireIngest(deps *gateway.Deps, reg *metrics.Registry, j *journal.Journal) {
	deps.Metrics, deps.Journal = reg, j
}
