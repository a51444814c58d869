package dispatch

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// Auto-disable. A target with disable_after that has failed for that long
// without one success (failures as the breaker counts them: no answer, or
// a retryable status) is disabled: its breaker says "disabled", nothing is
// claimed, and its deliveries wait in the queue, however old, until an
// operator enables it (Dispatcher.Enable, POST /admin/targets/{name}/enable)
// or a reload or restart brings a changed config for it. Then it starts
// over: breaker closed, clock at zero, and it drains.
//
// Where the clock lives. The lane knows the last success, but a lane is
// rebuilt by every reload and lost at every restart; a clock kept only
// there would start over each time, and a gateway restarted daily during
// a three-day outage would never disable anything. Deriving the start
// from the queue (the oldest pending delivery's failed attempts) is not
// the same thing either: a delivery that kept failing says nothing of the
// others that succeeded meanwhile. So the clock, the disabled switch and
// the config it was disabled under are kept in the queue store beside the
// target's deliveries (queue.Store.SetTargetState), written when they
// change (the first failure after a success, the first success after
// failures, disable, enable), never per attempt, and read when a lane
// starts. A steady target costs one atomic load per attempt.

// failClock is a lane's continuous-failure clock and what it is watching
// for.
type failClock struct {
	// since is when the current run of failures began (unix ns); 0: the
	// last attempt succeeded. Read on every attempt, so it is an atomic.
	since atomic.Int64
	// recovering is set by enable: the next success is reported as
	// target.recovered.
	recovering atomic.Bool

	// retired is set when a reload handed the target to a lane with
	// another config (handover): what the old lane's last attempts show
	// is about the old config, and changes nothing any more.
	retired atomic.Bool

	mu          sync.Mutex // serializes the changes below and their writes to the store
	disabledAt  int64      // unix ns; 0: not disabled
	failedSince int64      // since, kept across enable for the target.recovered report
	restored    bool       // read from the store, or handed over: a lane's start leaves it alone
}

// targetState is what the store keeps of a lane across restarts: version
// 1, then since and disabledAt as varints, then the config fingerprint.
type targetState struct {
	since      int64
	disabledAt int64
	config     [sha256.Size]byte // fingerprint of the config it was disabled under
}

func (s targetState) encode() []byte {
	if s.since == 0 && s.disabledAt == 0 {
		return nil // nothing to keep: the store deletes the key
	}
	b := []byte{1}
	b = binary.AppendVarint(b, s.since)
	b = binary.AppendVarint(b, s.disabledAt)
	return append(b, s.config[:]...)
}

func decodeState(b []byte) (targetState, error) {
	var s targetState
	if len(b) == 0 {
		return s, nil
	}
	if b[0] != 1 {
		return s, fmt.Errorf("unknown version %d", b[0])
	}
	b = b[1:]
	var n int
	if s.since, n = binary.Varint(b); n <= 0 {
		return s, errors.New("truncated")
	}
	b = b[n:]
	if s.disabledAt, n = binary.Varint(b); n <= 0 {
		return s, errors.New("truncated")
	}
	b = b[n:]
	if len(b) != sha256.Size {
		return s, errors.New("truncated")
	}
	copy(s.config[:], b)
	return s, nil
}

// restore reads the lane's state from the store as it starts. A target
// disabled under the config it has now stays disabled; one whose config
// changed since (a reload, or an edit before a restart) is enabled, as a
// reload that changes it would.
func (l *lane) restore() {
	f := l.fail
	f.mu.Lock()
	done := f.restored
	f.restored = true
	f.mu.Unlock()
	if done {
		return // handed over by a reload (handover)
	}
	raw, err := l.d.store.TargetState(l.name)
	if err != nil {
		l.d.log.Error("dispatch: cannot read the target's state; its failure clock starts over", "target", l.name, "err", err)
		return
	}
	st, err := decodeState(raw)
	if err != nil {
		l.d.log.Error("dispatch: the target's stored state is unreadable; its failure clock starts over", "target", l.name, "err", err)
		st = targetState{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case st.disabledAt != 0 && st.config == fingerprint(l.cfg):
		f.since.Store(st.since)
		f.disabledAt = st.disabledAt
		l.breaker.disable()
		l.d.log.Warn("dispatch: target is disabled; its deliveries are kept: enable it with POST /admin/targets/"+l.name+"/enable, or change its config and reload",
			"target", l.name, "disabled_at", time.Unix(0, st.disabledAt).UTC(), "failing_since", time.Unix(0, st.since).UTC())
		return
	case st.disabledAt != 0:
		f.recovering.Store(true)
		f.failedSince = st.since
		l.d.log.Info("dispatch: target enabled: its config changed; its deliveries go out again", "target", l.name)
	case l.cfg.DisableAfter > 0:
		f.since.Store(st.since) // the clock goes on where it was
		return
	}
	if len(raw) > 0 {
		l.save() // forget what no longer applies
	}
}

// handover gives each of g's lanes the failure clock and disabled switch
// of the lane of the same target in prev, the lanes g replaces, instead
// of reading them from the store as they start: prev's lanes may still
// run attempts, and the store does not yet hold what those show.
//
// With the same config, the new lane shares the old one's clock and
// switch: a success of the old lane's last attempt ends the run of
// failures for both, and a disable by it disables both. With another
// config, the new lane starts from a copy, as a restart with a changed
// config would from the store (a disabled target is enabled), and the old
// lane's last attempts, made with the old config, change nothing.
// Called by Swap before g starts.
func (g *Lanes) handover(prev *Lanes) {
	if prev == nil {
		return
	}
	for _, l := range g.order {
		if old := prev.lanes[l.name]; old != nil {
			l.takeOver(old)
		}
	}
}

func (l *lane) takeOver(old *lane) {
	f := old.fail
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.restored {
		return // the old lane never started: the store has it all
	}
	if fingerprint(old.cfg) == fingerprint(l.cfg) {
		l.fail = f
		l.breaker.off = old.breaker.off
		if l.breaker.disabled() {
			l.d.log.Warn("dispatch: target is disabled; its deliveries are kept: enable it with POST /admin/targets/"+l.name+"/enable, or change its config and reload",
				"target", l.name, "disabled_at", time.Unix(0, f.disabledAt).UTC(), "failing_since", time.Unix(0, f.since.Load()).UTC())
		}
		return
	}
	f.retired.Store(true)
	n := l.fail // not shared yet: no lock needed
	n.restored = true
	n.since.Store(f.since.Load())
	n.recovering.Store(f.recovering.Load())
	n.failedSince = f.failedSince
	if old.breaker.disabled() {
		n.since.Store(0)
		n.recovering.Store(true)
		n.failedSince = f.since.Load()
		l.d.log.Info("dispatch: target enabled: its config changed; its deliveries go out again", "target", l.name)
	}
	l.save() // what the old config's lane stored no longer applies
}

// save writes the lane's state to the store; l.fail.mu held.
func (l *lane) save() {
	f := l.fail
	st := targetState{disabledAt: f.disabledAt}
	if l.cfg.DisableAfter > 0 {
		st.since = f.since.Load()
	}
	if st.disabledAt != 0 {
		st.config = fingerprint(l.cfg)
	}
	if err := l.d.store.SetTargetState(l.name, st.encode()); err != nil {
		l.d.log.Error("dispatch: cannot store the target's state; a restart may forget it", "target", l.name, "err", err)
	}
}

// watch is told the health of every attempt (failed as the breaker
// counts it; changed: the breaker changed state) and keeps the clock. It
// reports whether the lane's state changed (the target was disabled).
// Allocation-free unless something changes.
func (l *lane) watch(failed, changed bool, now time.Time, reason string) bool {
	f := l.fail
	if f.retired.Load() {
		return false // a reload gave the target to a lane with another config
	}
	if !failed {
		if f.since.Load() != 0 || f.recovering.Load() {
			l.succeeded(changed, now)
		}
		return false
	}
	since := f.since.Load()
	if since == 0 {
		f.mu.Lock()
		if f.since.Load() == 0 {
			f.since.Store(now.UnixNano())
			if l.cfg.DisableAfter > 0 {
				l.save()
			}
		}
		f.mu.Unlock()
		return false
	}
	if l.cfg.DisableAfter <= 0 || now.Sub(time.Unix(0, since)) < l.cfg.DisableAfter || l.breaker.disabled() {
		return false
	}
	return l.disable(now, reason)
}

// succeeded ends a run of failures.
func (l *lane) succeeded(changed bool, now time.Time) {
	f := l.fail
	f.mu.Lock()
	since := f.since.Swap(0)
	wasDisabled := f.recovering.Swap(false)
	if wasDisabled {
		since = f.failedSince
	}
	f.failedSince = 0
	if l.cfg.DisableAfter > 0 {
		l.save()
	}
	// An attempt sent before the target was disabled may succeed after:
	// the target stays disabled until enabled, so it has not recovered.
	disabled := l.breaker.disabled()
	f.mu.Unlock()
	// A breaker that closed again (its probe succeeded) or a target
	// enabled again that delivers: someone may have been told it was in
	// trouble. A failure or two between successes is not news.
	if disabled || (!changed && !wasDisabled) {
		return
	}
	l.d.log.Info("dispatch: target recovered: it delivers again", "target", l.name, "failing_since", time.Unix(0, since).UTC(), "was_disabled", wasDisabled)
	l.d.emit(config.EventTargetRecovered, l.name, recoveredData{
		Target: l.name, FailingSince: stamp(since), WasDisabled: wasDisabled,
	})
}

// disable disables the lane's target after it failed for disable_after.
func (l *lane) disable(now time.Time, reason string) bool {
	f := l.fail
	f.mu.Lock()
	since := f.since.Load()
	// Checked again under the lock: a success since the caller looked
	// ended the run of failures.
	if l.breaker.disabled() || since == 0 || now.Sub(time.Unix(0, since)) < l.cfg.DisableAfter {
		f.mu.Unlock()
		return false
	}
	f.disabledAt = now.UnixNano()
	l.breaker.disable()
	l.save()
	f.mu.Unlock()
	l.d.log.Warn("dispatch: target disabled: it failed for disable_after without one success; its deliveries are kept and not attempted: enable it with POST /admin/targets/"+l.name+"/enable, or change its config and reload",
		"target", l.name, "failing_since", time.Unix(0, since).UTC(), "disable_after", l.cfg.DisableAfter.String(), "error", reason)
	l.d.emit(config.EventTargetDisabled, l.name, disabledData{
		Target: l.name, FailingSince: stamp(since), DisableAfter: l.cfg.DisableAfter.String(), LastError: reason,
		Action: "its deliveries are kept and not attempted; enable it with POST /admin/targets/" + l.name + "/enable, or change its config and reload",
	})
	return true
}

// ErrUnknownTarget is returned by Enable for a target with no lane.
var ErrUnknownTarget = errors.New("dispatch: no such target")

// Enable lifts a target's disable: its breaker closes, its clock starts
// over, and its deliveries go out again. wasDisabled reports whether it
// was disabled (enabling a target that is not is harmless).
func (d *Dispatcher) Enable(name string) (wasDisabled bool, err error) {
	l := d.cur.Load().lanes[name]
	if l == nil {
		return false, ErrUnknownTarget
	}
	f := l.fail
	f.mu.Lock()
	wasDisabled = l.breaker.disabled()
	if wasDisabled {
		f.failedSince = f.since.Swap(0)
		f.disabledAt = 0
		f.recovering.Store(true)
		l.breaker.enable()
		l.save()
	}
	f.mu.Unlock()
	if wasDisabled {
		d.log.Info("dispatch: target enabled; its deliveries go out again", "target", name, "by", "admin")
		l.notify()
	}
	return wasDisabled, nil
}

// FailingSince reports since when target has been failing without a
// success (zero: it is not, or it is unknown).
func (d *Dispatcher) FailingSince(target string) time.Time {
	if l := d.cur.Load().lanes[target]; l != nil {
		if ns := l.fail.since.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
	}
	return time.Time{}
}

// fingerprint hashes everything a target is configured with, secrets
// included (a rotated credential is a fix worth trying), so a disabled
// target can tell whether its config changed since, across restarts too.
func fingerprint(cfg *config.Target) [sha256.Size]byte {
	h := sha256.New()
	hashValue(h, reflect.ValueOf(*cfg))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func hashValue(h hash.Hash, v reflect.Value) {
	switch x := v.Interface().(type) {
	case config.Secret:
		fmt.Fprintf(h, "%q;", x.Reveal())
		return
	case *url.URL:
		if x != nil {
			fmt.Fprintf(h, "%q;", x.String())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			hashValue(h, v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fmt.Fprintf(h, "%s=", v.Type().Field(i).Name)
				hashValue(h, v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		fmt.Fprintf(h, "[%d:", v.Len())
		for i := range v.Len() {
			hashValue(h, v.Index(i))
		}
		h.Write([]byte("]"))
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		fmt.Fprintf(h, "{%d:", len(keys))
		for _, k := range keys {
			fmt.Fprintf(h, "%q:", fmt.Sprint(k))
			hashValue(h, v.MapIndex(k))
		}
		h.Write([]byte("}"))
	default:
		fmt.Fprintf(h, "%#v;", v.Interface())
	}
}

// Disabled reports whether target is disabled: the gateway's Disabled,
// so a sync route does not forward to it either. One map lookup and one
// atomic load; allocation-free.
func (d *Dispatcher) Disabled(target string) bool {
	l := d.cur.Load().lanes[target]
	return l != nil && l.breaker.disabled()
}
