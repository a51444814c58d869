//go:build !linux

package queue

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// diskFS is the real filesystem (internal/handoff is Linux only).
func diskFS(*atomic.Int32) vfs.FS { return vfs.Default }
