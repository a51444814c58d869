//go:build race

package main

import "time"

// The timings of TestRunawayPluginsE2E under the race detector, which
// makes starting a Go guest about 20 times as costly: 70-80 ms against
// 3 ms in transforms' BenchmarkInstance, because the detector shadows
// every byte the instantiation copies into linear memory and each shadow
// page costs a page fault. With other starts and 100 senders on two
// cores, starts took up to 1.9 s on the CI machine, past the pool's bound
// for a 100 ms plugin (1 s), and health checks waited up to 1.1 s while
// they ran. So the runaways get a timeout whose start bound covers that,
// and the other bounds are four times as loose; the run without the race
// detector (CI runs both) holds the gateway to the tight ones.
const (
	pluginTimeout = 300 * time.Millisecond
	instanceStart = 10 * pluginTimeout // the pool's bound (transforms/pool.go, initTimeout)
	slow          = 4
)
