//go:build !race

package main

import "time"

// The timings of TestRunawayPluginsE2E without the race detector: the
// bounds the gateway is held to.
const (
	// pluginTimeout is the runaway plugins' timeout.
	pluginTimeout = 100 * time.Millisecond
	// instanceStart is the runaways' start_timeout: how long an instance
	// (a runaway's replacement) may take to start, and so how long past
	// its timeout a caller may wait for it. A Go guest starts in about
	// 3 ms (transforms' BenchmarkInstance).
	instanceStart = time.Second
	// slow scales the test's other bounds (a runaway's answer past its timeout,
	// a collection's length).
	slow = 1
)
