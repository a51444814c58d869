//go:build !race

package main

import "time"

// The timings of TestRunawayPluginsE2E without the race detector: the
// bounds the gateway is held to.
const (
	// pluginTimeout is the runaway plugins' timeout.
	pluginTimeout = 100 * time.Millisecond
	// instanceStart bounds how long a plugin instance (a runaway's
	// replacement) may take to start: the pool's own bound, ten timeouts
	// or a second (transforms/pool.go, initTimeout). A Go guest starts in
	// about 3 ms (transforms' BenchmarkInstance).
	instanceStart = time.Second
	// slow scales the test's other bounds (a health check's longest wait,
	// a collection's length).
	slow = 1
)
