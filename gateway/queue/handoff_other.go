//go:build !linux

package queue

import "github.com/cockroachdb/pebble/v2/vfs"

// diskFS is the real filesystem (internal/handoff is Linux only).
func diskFS() vfs.FS { return vfs.Default }
