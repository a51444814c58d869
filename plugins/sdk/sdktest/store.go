package sdktest

import (
	"strconv"
	"sync"
	"time"
)

// Store is the fake host's key-value store: what sdk.KV talks to in tests.
// Share one Store between Runs to keep counters across calls; set
// Input.Now to move the clock past a TTL.
type Store struct {
	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	val     []byte
	expires int64 // unix nanoseconds; 0 never
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{m: map[string]entry{}} }

func (s *Store) live(key string, now int64) (entry, bool) {
	e, ok := s.m[key]
	if ok && e.expires != 0 && now >= e.expires {
		delete(s.m, key)
		return entry{}, false
	}
	return e, ok
}

func expiry(ttlMillis, now int64) int64 {
	if ttlMillis <= 0 {
		return 0
	}
	return now + ttlMillis*int64(time.Millisecond)
}

// Get implements the host's kv_get.
func (s *Store) Get(key string, now int64) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, now)
	return e.val, ok
}

// Set implements the host's kv_set.
func (s *Store) Set(key string, val []byte, ttlMillis, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = entry{val: val, expires: expiry(ttlMillis, now)}
}

// Incr implements the host's kv_incr: the TTL is set when the key is
// created. A value that is not a decimal integer counts as 0.
func (s *Store) Incr(key string, delta, ttlMillis, now int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, now)
	if !ok {
		e.expires = expiry(ttlMillis, now)
	}
	old, _ := strconv.ParseInt(string(e.val), 10, 64)
	n := old + delta
	e.val = strconv.AppendInt(nil, n, 10)
	s.m[key] = e
	return n
}

// Delete implements the host's kv_delete.
func (s *Store) Delete(key string, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// Len returns the number of live keys at time now.
func (s *Store) Len(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.m {
		if _, ok := s.live(k, now.UnixNano()); ok {
			n++
		}
	}
	return n
}
