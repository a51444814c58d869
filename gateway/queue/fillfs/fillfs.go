// Package fillfs is a Pebble filesystem for tests of a full disk and of a
// failing one: real files in a real directory (vfs.Default underneath), on
// a disk whose size the test sets. Writes past the size fail with ENOSPC
// as a real filesystem's do, GetDiskUsage reports what is left, and the
// test can fill the disk as another program would, free it again, or make
// every write of the store's log fail (an I/O error in the middle of a
// commit).
//
//	fs := fillfs.New(8 << 20)              // an 8 MiB disk
//	s, _ := queue.Open(queue.Options{Path: dir, FS: fs})
//	fs.Fill(fs.Avail() - 1<<20)            // someone else leaves 1 MiB
//	fs.Fill(-4 << 20)                      // and deletes 4 MiB again
//	fs.FailLog(syscall.EIO)                // the next log write fails
//
// It is not a mock of Pebble: Pebble runs for real on real files; only the
// size of the disk and the faults are simulated.
package fillfs

import (
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is the filesystem; safe for concurrent use.
type FS struct {
	vfs.FS // the real disk

	mu       sync.Mutex
	size     int64
	used     int64            // bytes written through FS, less removed files, plus Fill
	sizes    map[string]int64 // bytes counted per file, given back when it is removed
	logErr   error            // writes and syncs of log files fail with it
	writes   int64            // writes that reached the disk, for tests that wait for some
	logSyncs int64            // syncs of log files that succeeded
}

// New returns a disk of size bytes, empty.
func New(size int64) *FS {
	return &FS{FS: vfs.Default, size: size, sizes: map[string]int64{}}
}

// Fill takes n bytes of the disk as another program would (n < 0 frees
// them again); the disk never holds less than nothing.
func (f *FS) Fill(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used = max(f.used+n, 0)
}

// Avail is what is left of the disk.
func (f *FS) Avail() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(f.size-f.used, 0)
}

// FailLog makes every write and sync of a write-ahead log file (*.log)
// fail with err from now on; nil makes them work again.
func (f *FS) FailLog(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logErr = err
}

// GetDiskUsage reports the simulated disk.
func (f *FS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	avail := max(f.size-f.used, 0)
	return vfs.DiskUsage{AvailBytes: uint64(avail), TotalBytes: uint64(f.size), UsedBytes: uint64(f.size - avail)}, nil
}

// Unwrap returns the real disk.
func (f *FS) Unwrap() vfs.FS { return f.FS }

func (f *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	return f.wrap(name, file, err)
}

func (f *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	return f.wrap(name, file, err)
}

func (f *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	if err == nil {
		f.mu.Lock()
		f.sizes[newname] = f.sizes[oldname]
		delete(f.sizes, oldname)
		f.mu.Unlock()
	}
	return f.wrap(newname, file, err)
}

func (f *FS) Rename(oldname, newname string) error {
	if err := f.FS.Rename(oldname, newname); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used -= f.sizes[newname] // a replaced file is gone
	f.sizes[newname] = f.sizes[oldname]
	delete(f.sizes, oldname)
	return nil
}

func (f *FS) Remove(name string) error {
	if err := f.FS.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used = max(f.used-f.sizes[name], 0)
	delete(f.sizes, name)
	return nil
}

func (f *FS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &fillFile{File: file, fs: f, name: name, log: strings.HasSuffix(name, ".log")}, nil
}

// take reserves up to n bytes for a write to name and returns how many
// it may write and the error that cuts it short (ENOSPC), if any.
func (f *FS) take(name string, log bool, n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if log && f.logErr != nil {
		return 0, f.logErr
	}
	var err error
	if left := f.size - f.used; int64(n) > left {
		n, err = int(max(left, 0)), syscall.ENOSPC
	}
	f.used += int64(n)
	f.sizes[name] += int64(n)
	f.writes++
	return n, err
}

// Writes counts the writes that reached the disk (whole or in part).
func (f *FS) Writes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// LogSyncs counts the syncs (fsync, fdatasync) of write-ahead log files
// that succeeded.
func (f *FS) LogSyncs() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logSyncs
}

// synced counts a sync of a log file that succeeded.
func (f *FS) synced(log bool, err error) error {
	if log && err == nil {
		f.mu.Lock()
		f.logSyncs++
		f.mu.Unlock()
	}
	return err
}

func (f *FS) syncErr(log bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if log {
		return f.logErr
	}
	return nil
}

type fillFile struct {
	vfs.File
	fs   *FS
	name string
	log  bool
}

func (w *fillFile) Write(p []byte) (int, error) {
	n, err := w.fs.take(w.name, w.log, len(p))
	if n > 0 {
		m, werr := w.File.Write(p[:n])
		if werr != nil {
			return m, werr
		}
	}
	return n, err
}

func (w *fillFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.fs.take(w.name, w.log, len(p))
	if n > 0 {
		m, werr := w.File.WriteAt(p[:n], off)
		if werr != nil {
			return m, werr
		}
	}
	return n, err
}

func (w *fillFile) Sync() error {
	if err := w.fs.syncErr(w.log); err != nil {
		return err
	}
	return w.fs.synced(w.log, w.File.Sync())
}

func (w *fillFile) SyncData() error {
	if err := w.fs.syncErr(w.log); err != nil {
		return err
	}
	return w.fs.synced(w.log, w.File.SyncData())
}

func (w *fillFile) SyncTo(length int64) (bool, error) {
	if err := w.fs.syncErr(w.log); err != nil {
		return false, err
	}
	return w.File.SyncTo(length)
}

// Fd hides the descriptor, so Pebble writes and syncs through the methods
// above rather than with system calls of its own.
func (w *fillFile) Fd() uintptr { return vfs.InvalidFd }
