//go:build linux

package queue

import (
	"io/fs"
	"runtime"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/internal/handoff"
)

// diskFS is the real filesystem, its files' syncs made through
// internal/handoff while the store is busy: while the log's fsync waits on
// the disk, the goroutines that could run (ingest requests on their way to
// the next commit) get the core at once instead of when the runtime's
// sysmon notices the call (RATIONALE.md, "An fsync hands the core over").
// waiting is the store's count of synced commits under way.
func diskFS(waiting *atomic.Int32) vfs.FS { return handoffFS{vfs.Default, waiting} }

type handoffFS struct {
	vfs.FS
	waiting *atomic.Int32
}

// Unwrap is the filesystem below, as Pebble's own wrappers give it.
func (h handoffFS) Unwrap() vfs.FS { return h.FS }

func (h handoffFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return h.wrapFile(h.FS.Create(name, c))
}

func (h handoffFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return h.wrapFile(h.FS.Open(name, opts...))
}

func (h handoffFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return h.wrapFile(h.FS.OpenReadWrite(name, c, opts...))
}

func (h handoffFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return h.wrapFile(h.FS.ReuseForWrite(oldname, newname, c))
}

func (h handoffFS) OpenDir(name string) (vfs.File, error) {
	f, err := h.FS.OpenDir(name)
	if err != nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return &handoffFile{File: f, fd: f.Fd(), waiting: h.waiting, dir: true}, nil
}

func (h handoffFS) wrapFile(f vfs.File, err error) (vfs.File, error) {
	if err != nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return &handoffFile{File: f, fd: f.Fd(), waiting: h.waiting}, nil
}

// handoffFile makes the system calls Pebble's own file would, through
// handoff when it pays: Sync is fsync, as os.File's; SyncData is
// fdatasync, or fsync for a directory. SyncTo, Pebble's background
// sync_file_range, stays as it is: nobody waits on it.
type handoffFile struct {
	vfs.File
	fd      uintptr
	waiting *atomic.Int32
	dir     bool
}

// handOff says whether this sync hands the P off. Only with one P (with
// several, the others run meanwhile anyway), and not for the sync of a
// lone sender's commit (waiting == 1): that sender has nobody to serve,
// and handing off would cost it a thread wakeup and a woken sysmon (about
// 60 µs of CPU per event in BenchmarkEnqueue's sequential run).
//
// With two or more commits waiting, other requests are under way that the
// P can serve meanwhile. With none (waiting == 0) the sync is not a
// commit's own: with sync = "batch", the log's fsync 30 ms after writes
// (store.go, batchSyncEvery) and a log rotation's (10-15 ms held the P in
// the async harness, every 300 ms, when the log was synced once a
// second); a flush's table; the MANIFEST. Nothing bounds how long those
// take, and the requests that arrive meanwhile are what the P is for
// (RATIONALE.md, "An fsync hands the core over"); they come at most a few
// tens of times a second, so the cost of a handoff nobody needed is
// small.
func (f *handoffFile) handOff() bool {
	return f.waiting.Load() != 1 && runtime.GOMAXPROCS(0) == 1
}

func (f *handoffFile) Sync() error {
	if !f.handOff() {
		return f.File.Sync()
	}
	return pathError("sync", f.File, handoff.Fsync(f.fd))
}

func (f *handoffFile) SyncData() error {
	switch {
	case f.dir:
		return f.Sync()
	case !f.handOff():
		return f.File.SyncData()
	}
	return handoff.Fdatasync(f.fd)
}

// pathError wraps err as os.File.Sync does, so a failed fsync names its
// file in the log.
func pathError(op string, f vfs.File, err error) error {
	if err == nil {
		return nil
	}
	name := ""
	if n, ok := f.(interface{ Name() string }); ok {
		name = n.Name()
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}
