package queue

import (
	"runtime"
	"time"
)

// yieldBeforeSync lets the goroutines ready to run reach their commits
// before the log's next fsync (RATIONALE.md "Group commit: yield before
// the next fsync"). Pebble calls it, as Options.WALMinSyncInterval, from
// its log writer's goroutine right after every fsync; it returns no
// interval, so Pebble never waits on a timer.
//
// With sync "always", Pebble shares one fsync among the commits queued
// when it starts. On a busy core with a quick disk that is one to three:
// the fsync ends before the next few requests have been read and routed,
// and each fsync costs tens of microseconds of CPU of its own (the system
// call, the block layer, the threads the runtime hands the core to and
// back). Yielding first lets every goroutine already runnable (ingest
// handlers on their way to Enqueue) run until it blocks, so their
// commits join the next fsync. When nothing else is runnable (one sender
// at a time, an idle gateway) the yield returns at once and nobody
// waits. A timed interval would instead hold every fsync back, a lone
// sender's too, and Go's timers wake an idle process no sooner than about
// a millisecond.
func yieldBeforeSync() time.Duration {
	runtime.Gosched()
	return 0
}
