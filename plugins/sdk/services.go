package sdk

import (
	"fmt"
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
)

// Level is a log level.
type Level int32

const (
	LevelDebug Level = Level(abi.LogDebug)
	LevelInfo  Level = Level(abi.LogInfo)
	LevelWarn  Level = Level(abi.LogWarn)
	LevelError Level = Level(abi.LogError)
)

// Log writes msg to the gateway's log, attributed to the plugin. The host
// rate-limits it per plugin, and the bytes count toward max_output.
func Log(level Level, msg string) { hostcall.Log(int32(level), msg) }

// Logf is Log with fmt formatting.
func Logf(level Level, format string, args ...any) { Log(level, fmt.Sprintf(format, args...)) }

// Now returns the gateway's wall clock. Prefer it to time.Now: tests
// (sdktest.Input.Now) control it.
func Now() time.Time { return time.Unix(0, hostcall.Now()) }

// KV is the plugin's key-value store: in memory in the gateway, shared by
// every route using the plugin, bounded in entries (least recently used go
// first), atomic per operation, lost on restart.
var KV kvStore

type kvStore struct {
	buf []byte
}

// Get returns the value of key, and false when it is absent or expired.
//
// # Notes
//
// The value is read into a buffer reused by the next Get: copy it to keep
// it.
func (s *kvStore) Get(key string) ([]byte, bool) {
	b, ok := read(s.buf, func(b []byte) int32 { return hostcall.KVGet(key, b) })
	s.buf = b
	return b, ok
}

// Set sets key to val (copied by the host); ttl <= 0 means no expiry.
func (s *kvStore) Set(key string, val []byte, ttl time.Duration) error {
	if rc := hostcall.KVSet(key, val, ttl.Milliseconds()); rc < 0 {
		return &HostError{Func: "kv_set", Arg: key, Err: codeErr(rc)}
	}
	return nil
}

// Incr adds delta to the counter at key (absent counts as 0) and returns
// the new value. ttl applies when the key is created: a window counted from
// the first increment; ttl <= 0 means no expiry.
func (s *kvStore) Incr(key string, delta int64, ttl time.Duration) int64 {
	return hostcall.KVIncr(key, delta, ttl.Milliseconds())
}

// Delete deletes key.
func (s *kvStore) Delete(key string) error {
	if rc := hostcall.KVDelete(key); rc < 0 {
		return &HostError{Func: "kv_delete", Arg: key, Err: codeErr(rc)}
	}
	return nil
}
