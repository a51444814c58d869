//go:build race

package main

import "time"

// The timings of TestRunawayPluginsE2E under the race detector, which
// makes starting a Go guest about 20 times as costly: 70-80 ms against
// 3 ms in transforms' BenchmarkInstance, because the detector shadows
// every byte the instantiation copies into linear memory and each shadow
// page costs a page fault. With other starts and 100 senders on two
// cores, starts took up to 1.9 s on the CI machine, and health checks
// waited up to 1.1 s while they ran. So the runaways get a start_timeout
// that covers that, and the other bounds are four times as loose; the
// run without the race detector (CI runs both) holds the gateway to the
// tight ones.
const (
	pluginTimeout = 300 * time.Millisecond
	instanceStart = 3 * time.Second // the runaways' start_timeout
	slow          = 4
)
