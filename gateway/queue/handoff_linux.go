//go:build linux

package queue

import (
	"io/fs"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/internal/handoff"
)

// diskFS is the real filesystem, its files' syncs made through
// internal/handoff: while the log's fsync waits on the disk, the goroutines
// that could run (ingest requests on their way to the next commit) get the
// core at once instead of when the runtime's sysmon notices the call
// (RATIONALE.md, "An fsync hands the core over").
func diskFS() vfs.FS { return handoffFS{vfs.Default} }

type handoffFS struct{ vfs.FS }

// Unwrap is the filesystem below, as Pebble's own wrappers give it.
func (h handoffFS) Unwrap() vfs.FS { return h.FS }

func (h handoffFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrapFile(h.FS.Create(name, c))
}

func (h handoffFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return wrapFile(h.FS.Open(name, opts...))
}

func (h handoffFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return wrapFile(h.FS.OpenReadWrite(name, c, opts...))
}

func (h handoffFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrapFile(h.FS.ReuseForWrite(oldname, newname, c))
}

func (h handoffFS) OpenDir(name string) (vfs.File, error) {
	f, err := h.FS.OpenDir(name)
	if err != nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return &handoffFile{File: f, fd: f.Fd(), dir: true}, nil
}

func wrapFile(f vfs.File, err error) (vfs.File, error) {
	if err != nil || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return &handoffFile{File: f, fd: f.Fd()}, nil
}

// handoffFile makes the system calls Pebble's own file would, through
// handoff: Sync is fsync, as os.File's; SyncData is fdatasync, or fsync
// for a directory. SyncTo, Pebble's background sync_file_range, stays as
// it is: nobody waits on it.
type handoffFile struct {
	vfs.File
	fd  uintptr
	dir bool
}

func (f *handoffFile) Sync() error { return pathError("sync", f.File, handoff.Fsync(f.fd)) }

func (f *handoffFile) SyncData() error {
	if f.dir {
		return f.Sync()
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
