// Package handoff syncs a file to disk without holding up the goroutines
// that could run meanwhile.
//
// Why: a goroutine in a system call keeps its P (the runtime's right to
// run Go code) until the call returns, unless the runtime's sysmon thread
// notices the call and hands the P to another thread. sysmon looks every
// 20 µs while it keeps finding work, but it backs off to 10 ms when it
// finds none. An fsync of the queue's log takes 0.2-4 ms on the disks
// measured, and with GOMAXPROCS=1 (a sidecar on one core) that is a P
// nobody else can use. In the load harness's async scenario the server
// core sat in iowait 9-10% of the time while ingest requests waited to
// be read (benchmarks/HISTORY.md, tenth run).
//
// The runtime has a variant of its system call entry for calls known to
// block, entersyscallblock, which hands the P off at once. The syscall
// package does not use it; this package does, for fsync and fdatasync only.
// It reaches the runtime through go:linkname. The runtime keeps both
// symbols for code outside the standard library (see the comments on
// runtime.entersyscallblock, go.dev/issue/67401), so a Go release that
// dropped them would fail the build, not misbehave.
//
// What it costs: handing the P off wakes another thread to run it, and
// the syncing goroutine, once the call returns, queues for a P instead of
// taking its own back; if the P went idle meanwhile, taking it wakes
// sysmon, which then polls for a while. That pays only when other
// goroutines wait for the P: with nobody to hand it to (a lone sender) it
// is pure cost, so the caller decides when to use it (gateway/queue's
// handoffFile: one P, and not the sync of a lone sender's commit).
package handoff
