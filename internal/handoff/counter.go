package handoff

import "sync/atomic"

// atomicCounter is a count that tests read.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add() { c.n.Add(1) }

// Load returns the count.
func (c *atomicCounter) Load() int64 { return c.n.Load() }

// Calls counts the syncs made through this package, for tests that check
// a store is wired to it.
var Calls atomicCounter
