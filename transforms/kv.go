package transforms

import (
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// kvStore is one plugin's key-value store: bounded in entries (least
// recently used go first), TTL checked on read, every operation atomic under
// one mutex. Entries are pointers so a set or an increment on an existing
// key reuses its buffer instead of allocating.
type kvStore struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *kvEntry]
	now func() int64 // unix nanoseconds; replaced in tests
}

type kvEntry struct {
	val     []byte
	expires int64 // unix nanoseconds; 0 means never
}

func newKVStore(maxEntries int) *kvStore {
	l, err := simplelru.NewLRU[string, *kvEntry](maxEntries, nil)
	if err != nil {
		panic(err) // only for maxEntries <= 0, a programming error
	}
	return &kvStore{lru: l, now: func() int64 { return time.Now().UnixNano() }}
}

// view is a string over key's bytes for lookups that do not keep the key.
func view(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	return unsafe.String(&key[0], len(key))
}

// live returns the entry for key unless it is absent or expired (an expired
// one is removed). Callers hold mu.
func (s *kvStore) live(key []byte) *kvEntry {
	e, ok := s.lru.Get(view(key))
	if !ok {
		return nil
	}
	if e.expires != 0 && s.now() >= e.expires {
		s.lru.Remove(view(key))
		return nil
	}
	return e
}

// get appends the value of key to dst; ok is false when absent.
func (s *kvStore) get(dst, key []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(key)
	if e == nil {
		return dst, false
	}
	return append(dst, e.val...), true
}

func (s *kvStore) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return s.now() + int64(ttl)
}

func (s *kvStore) set(key, val []byte, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.live(key); e != nil {
		e.val = append(e.val[:0], val...)
		e.expires = s.expiry(ttl)
		return
	}
	s.lru.Add(string(key), &kvEntry{val: append([]byte(nil), val...), expires: s.expiry(ttl)})
}

// incr adds delta to the decimal counter at key and returns the new value.
// An absent, expired or non-numeric value counts as 0; ttl applies only
// when the key is created.
func (s *kvStore) incr(key []byte, delta int64, ttl time.Duration) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(key)
	if e == nil {
		e = &kvEntry{expires: s.expiry(ttl)}
		s.lru.Add(string(key), e)
	}
	n, err := strconv.ParseInt(view(e.val), 10, 64)
	if err != nil {
		n = 0
	}
	n += delta
	e.val = strconv.AppendInt(e.val[:0], n, 10)
	return n
}

func (s *kvStore) delete(key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(view(key))
}
