package main

import (
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/journal"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/record"
)

// wireIngest hands the gateway its recorder as serve does: the log lines
// (access lines if asked), the metrics and the journal, each if present.
func wireIngest(deps *gateway.Deps, access bool, reg *metrics.Registry, j *journal.Journal) {
	var jr record.Recorder
	if j != nil {
		jr = j
	}
	deps.Recorder = record.Tee(record.Log(deps.Logger, access), reg.Recorder(), jr)
}
