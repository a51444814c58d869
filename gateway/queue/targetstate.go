package queue

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// kindState keys a target's delivery state (gateway/dispatch: since when
// it has been failing, whether it is disabled): t<target name>. It lives
// in the store beside the target's deliveries because it governs them: a
// restart opens both together, and a target disabled after days of
// failure stays disabled, its clock intact, across restarts and crashes.
// No scan at Open reads this kind; it is read by name when a lane is
// built.
const kindState = 't'

func stateKey(target string) []byte {
	k := make([]byte, 0, 1+len(target))
	return append(append(k, kindState), target...)
}

// TargetState returns the state SetTargetState last stored for target, or
// nil when there is none. The bytes are the caller's (dispatch encodes
// them); the store does not interpret them.
func (s *Store) TargetState(target string) ([]byte, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(stateKey(target))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: target state of %q: %w", target, err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// SetTargetState stores state for target; empty state deletes it. It is
// written on a change of state only (a target starts or stops failing, is
// disabled or enabled), not per attempt, and not fsynced, like an ack: a
// crash right after may forget the last change, which at worst restarts a
// failure clock.
func (s *Store) SetTargetState(target string, state []byte) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	b := s.db.NewBatch()
	if len(state) == 0 {
		b.Delete(stateKey(target), nil)
	} else {
		b.Set(stateKey(target), state, nil)
	}
	if err := s.commit(b, pebble.NoSync); err != nil {
		return fmt.Errorf("queue: target state of %q: %w", target, err)
	}
	return nil
}

// Fill is how full the queue is against its budget.
type Fill struct {
	Depth    int   // pending deliveries
	Bytes    int64 // pending record bytes
	MaxDepth int   // 0: unlimited
	MaxBytes int64 // 0: unlimited
}

// Fill reports the pending deliveries and bytes against the budget; it
// costs a lock, not a walk of the queue.
func (s *Store) Fill() Fill {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Fill{Depth: s.depth, Bytes: s.bytes, MaxDepth: s.opts.MaxDepth, MaxBytes: s.opts.MaxBytes}
}
