package transforms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/hookgate/hookgate/plugins/abi"
)

// memorySlack: a trap with less than this left below max_memory counts as
// running out of memory (the Go runtime grows its heap in 1 MiB steps or
// more).
const memorySlack = 1 << 20

// instance is one ready module instance with everything a call needs built
// in advance: the export, a reusable stack, the call state and a context
// carrying that state. A call allocates none of them.
type instance struct {
	p      *plugin
	mod    api.Module
	handle api.Function
	stack  []uint64
	st     callState
	ctx    context.Context // carries &st for the host functions; never canceled

	// fatal is the first "panic:" or "fatal error:" line the guest wrote
	// to stderr during the current call; it names the cause of an exit.
	fatal  []byte
	stdout guestWriter
	stderr guestWriter
}

// newInstance instantiates the plugin's module once more, under a unique
// name, running _initialize (or a start function) when the module has one.
func (p *plugin) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{p: p, stack: make([]uint64, 2)}
	in.st.plugin = p
	in.st.end()
	in.ctx = context.WithValue(context.Background(), stateKey{}, &in.st)
	in.stdout = guestWriter{in: in, stream: "stdout"}
	in.stderr = guestWriter{in: in, stream: "stderr"}

	cfg := wazeroModuleConfig(p, &in.stdout, &in.stderr, p.name+"#"+strconv.FormatUint(p.seq.Add(1), 10))
	// _initialize and start functions run inside InstantiateModule, under
	// a deadline too: a guest looping there must not hang Load.
	initTimeout := p.initTimeout()
	in.st.deadline = monoNow() + int64(initTimeout)
	mod, err := p.rt.InstantiateModule(in.ctx, p.compiled, cfg)
	if err != nil {
		if in.st.timedOut {
			return nil, fmt.Errorf("%s or the start function did not finish within %v", abi.ExportInitialize, initTimeout)
		}
		msg := firstLine(err.Error()) // without wazero's stack trace
		if f := in.fatal; len(f) > 0 {
			msg += " (" + string(f) + ")"
		}
		return nil, errors.New(msg)
	}
	in.fatal = in.fatal[:0]
	in.mod = mod
	in.handle = mod.ExportedFunction(abi.ExportHandle)
	return in, nil
}

// initTimeout bounds starting an instance: the spec's StartTimeout, by
// default ten calls' worth and at least MinStartTimeout, since a Go
// runtime starting up does more than a call.
func (p *plugin) initTimeout() time.Duration { return p.spec.StartTimeout }

// wazeroModuleConfig is an instance's module config: its name, its own
// stdout and stderr, real clocks and randomness (Go seeds its maps from
// them); still no file system, environment or arguments.
func wazeroModuleConfig(p *plugin, stdout, stderr io.Writer, name string) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName(name).
		WithStdout(stdout).
		WithStderr(stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	if p.hasInit {
		return cfg.WithStartFunctions(abi.ExportInitialize)
	}
	return cfg.WithStartFunctions()
}

// close releases an instance that is not running.
func (in *instance) close() {
	_ = in.mod.Close(context.Background())
}

// get borrows an instance: a ready one if there is one, else a new one if
// the pool is below its bound, else it waits for either. Instances are thus
// created when all existing ones are busy, or (discard) to replace one
// thrown away. The wait is bounded by ctx
// and by the plugin's timeout: a caller never queues longer for an instance
// than a call may run, so a plugin whose instances are all stuck in
// runaway calls answers every waiting event with KindBusy in bounded time
// instead of serializing them behind each other.
func (p *plugin) get(ctx context.Context) (*instance, error) {
	var in *instance
	select {
	case in = <-p.ready:
	default:
		var err error
		if in, err = p.wait(ctx); err != nil {
			return nil, err
		}
	}
	if p.dead.Load() {
		p.release(in)
		return nil, ErrClosed
	}
	if in == nil {
		start := time.Now()
		var err error
		if in, err = p.newInstance(context.Background()); err != nil {
			p.room <- struct{}{}
			// Counted as a failed call, as the caller sees it: an operator
			// must find a plugin that cannot start in its figures.
			p.stats.fail(abi.KindFailed)
			if p.obs != nil {
				p.obs.Call(time.Since(start), abi.KindFailed)
			}
			return nil, &PluginError{Plugin: p.name, Kind: abi.KindFailed, Err: fmt.Errorf("starting an instance: %w", err)}
		}
	}
	return in, nil
}

// wait is get's slow path: it returns an instance, or nil with the room
// for a new one. The timer comes from a pool, so even a saturated plugin
// allocates nothing per call.
//
// An instance being started is not a busy one: when the timeout passes
// while a replacement is starting (discard), the caller goes on waiting
// for that start to end, as it would have waited for a start of its own,
// and takes the instance if nobody else did. After a plugin's one
// instance timed out, the next event thus runs on the replacement however
// long a Go runtime takes to start, instead of failing as busy; callers
// queued behind runaway calls still give up at their timeout plus one
// start.
func (p *plugin) wait(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.ready:
		return in, nil
	case <-p.room:
		return nil, nil
	default:
	}
	t := waitTimers.get(p.spec.Timeout)
	defer waitTimers.put(t)
	var giveUp time.Time // the start's bound, once the timeout has passed
	for {
		select {
		case in := <-p.ready:
			return in, nil
		case <-p.room:
			return nil, nil
		case <-p.closing:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("transforms: waiting for an instance of plugin %q: %w", p.name, ctx.Err())
		case <-t.C:
			if p.starting.Load() > 0 {
				if giveUp.IsZero() {
					giveUp = time.Now().Add(p.initTimeout())
				}
				if time.Now().Before(giveUp) {
					t.Reset(time.Millisecond) // look again until the start ends
					continue
				}
			}
			// refill puts its instance in ready before it counts the
			// start as done, and an instance may come back just as the
			// time ran out: ready is looked at once more.
			select {
			case in := <-p.ready:
				return in, nil
			default:
				return nil, p.busy()
			}
		}
	}
}

// busy counts and returns the error of a caller that found every instance
// busy for a whole timeout.
func (p *plugin) busy() error {
	p.stats.fail(abi.KindBusy)
	if p.obs != nil {
		p.obs.Call(p.spec.Timeout, abi.KindBusy)
	}
	return &PluginError{Plugin: p.name, Kind: abi.KindBusy, Err: busyError{instances: p.spec.Instances, waited: p.spec.Timeout}}
}

// timerPool reuses the timers of get's slow path. Since Go 1.23 a stopped
// or reset timer never delivers a stale value, so a pooled timer is as good
// as a new one.
type timerPool struct{ p sync.Pool }

var waitTimers timerPool

func (tp *timerPool) get(d time.Duration) *time.Timer {
	if t, ok := tp.p.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func (tp *timerPool) put(t *time.Timer) {
	t.Stop()
	tp.p.Put(t)
}

// release gives back what get took: an instance, or (nil) the room for one.
func (p *plugin) release(in *instance) {
	if in == nil {
		p.room <- struct{}{}
		return
	}
	p.ready <- in
}

// put returns a healthy instance to the pool.
func (p *plugin) put(in *instance) { p.ready <- in }

// discard closes an instance that must not run again (a timeout, a trap,
// an exit) and starts its replacement in the background: a Go guest takes
// milliseconds to start, which the next event would otherwise wait for
// in front of its own call.
func (p *plugin) discard(in *instance) {
	p.stats.discarded.Add(1)
	in.close()
	p.room <- struct{}{}
	go p.refill()
}

// refill starts an instance into ready if the room for one is still free
// (a caller may have taken it to start one itself). It holds the room's
// token meanwhile, so close, which collects every token, waits for it.
func (p *plugin) refill() {
	select {
	case <-p.room:
	default:
		return
	}
	p.starting.Add(1)
	defer p.starting.Add(-1) // after the instance or the room is back
	if p.dead.Load() {
		p.room <- struct{}{}
		return
	}
	in, err := p.newInstance(context.Background())
	if err != nil {
		// The next call that needs it tries again, and fails with the
		// reason if it fails again.
		p.room <- struct{}{}
		return
	}
	p.ready <- in
}

// callResult is what a call decided, read from the call state before the
// instance goes back to the pool.
type callResult struct {
	result     int32 // the guest's return value
	dropped    bool
	eventDelay int64
	failMsg    string // set only when result is 1
	took       time.Duration
}

// call runs hookgate_handle(bodyLen, configID) with the call state already
// begun and its deadline set, and returns what the guest decided or the
// failure as a *PluginError. The instance is back in the pool (or
// discarded) when call returns.
func (in *instance) call(bodyLen int, configID uint32) (callResult, error) {
	p := in.p
	st := &in.st
	in.stack[0] = uint64(uint32(bodyLen))
	in.stack[1] = uint64(configID)
	in.fatal = in.fatal[:0]
	p.stats.calls.Add(1)
	start := monoNow()
	st.deadline = start + int64(p.spec.Timeout)
	err := in.handle.CallWithStack(in.ctx, in.stack)
	took := time.Duration(monoNow() - start)
	var perr *PluginError
	switch {
	case err != nil:
		perr = in.classify(err)
	case st.overOutput:
		perr = &PluginError{Plugin: p.name, Kind: abi.KindOutput, Err: fmt.Errorf("produced more than max_output (%d bytes)", p.spec.MaxOutput)}
	case st.badFunc != "":
		perr = &PluginError{Plugin: p.name, Kind: abi.KindABI, Err: fmt.Errorf("%s: pointer or length outside the plugin's memory", st.badFunc)}
	}
	if perr != nil {
		p.stats.fail(perr.Kind)
		if p.obs != nil {
			p.obs.Call(took, perr.Kind)
		}
		st.end()
		p.discard(in)
		return callResult{}, perr
	}
	res := callResult{result: int32(uint32(in.stack[0])), dropped: st.dropped, eventDelay: st.eventDelay, took: took}
	if res.result == 1 {
		res.failMsg = string(st.failMsg)
	}
	st.end()
	p.put(in)
	return res, nil
}

// classify turns a failed call into a PluginError naming the cause.
func (in *instance) classify(err error) *PluginError {
	p := in.p
	if in.st.timedOut {
		return &PluginError{Plugin: p.name, Kind: abi.KindTimeout, Err: timeoutError(p.spec.Timeout)}
	}
	fatal := string(in.fatal)
	var exit *sys.ExitError
	switch {
	case bytes.Contains(in.fatal, []byte("stack overflow")) || (err != nil && strings.Contains(firstLine(err.Error()), "stack overflow")):
		// wazero's own limit on the wasm call stack, or a Go guest's
		// runtime refusing to grow a goroutine stack: the same bug in the
		// plugin (unbounded recursion), so the same name for it.
		return &PluginError{Plugin: p.name, Kind: abi.KindTrap, Err: errors.New("trapped: stack overflow (unbounded recursion?)")}
	case bytes.Contains(in.fatal, []byte("out of memory")):
		return &PluginError{Plugin: p.name, Kind: abi.KindMemory, Err: fmt.Errorf("ran out of memory (max_memory %d bytes): %s", p.spec.MaxMemory, fatal)}
	case bytes.HasPrefix(in.fatal, []byte("panic: ")):
		return &PluginError{Plugin: p.name, Kind: abi.KindTrap, Err: fmt.Errorf("trapped: %s", fatal)}
	case errors.As(err, &exit):
		if fatal != "" {
			return &PluginError{Plugin: p.name, Kind: abi.KindExit, Err: fmt.Errorf("exited with code %d: %s", exit.ExitCode(), fatal)}
		}
		return &PluginError{Plugin: p.name, Kind: abi.KindExit, Err: fmt.Errorf("exited with code %d", exit.ExitCode())}
	default:
		msg := firstLine(err.Error()) // without wazero's stack trace
		// A Go runtime that cannot grow its heap sometimes dies without a
		// word (an unreachable in its allocator): a trap with memory at
		// the cap is a memory error.
		if used := uint64(in.mod.Memory().Size()); used+memorySlack >= uint64(p.spec.MaxMemory) {
			return &PluginError{Plugin: p.name, Kind: abi.KindMemory, Err: fmt.Errorf("ran out of memory (max_memory %d bytes, %d in use): trapped: %s", p.spec.MaxMemory, used, msg)}
		}
		return &PluginError{Plugin: p.name, Kind: abi.KindTrap, Err: fmt.Errorf("trapped: %s", msg)}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// log writes one guest line, rate-limited per plugin; lines dropped before
// it are counted in it.
func (p *plugin) log(level slog.Level, route string, eventID []byte, source string, msg []byte) {
	if !p.limiter.Allow() {
		p.dropped.Add(1)
		p.stats.logDrops.Add(1)
		return
	}
	attrs := [5]slog.Attr{
		slog.String("source", source),
		slog.String("route", route),
		slog.String("event_id", string(eventID)),
	}
	n := 3
	if d := p.dropped.Swap(0); d > 0 {
		attrs[n] = slog.Int64("dropped_lines", d)
		n++
	}
	p.logger.LogAttrs(context.Background(), level, string(msg), attrs[:n]...)
}

// guestWriter is a guest's stdout or stderr: complete lines go to the log
// (rate-limited), and stderr's panic or fatal line is kept for the error.
type guestWriter struct {
	in     *instance
	stream string
	buf    []byte
}

const maxGuestLine = 4 << 10

func (w *guestWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if room := maxGuestLine - len(w.buf); room > 0 {
				w.buf = append(w.buf, b[:min(room, len(b))]...)
			}
			break
		}
		w.buf = append(w.buf, b[:min(i, max(0, maxGuestLine-len(w.buf)))]...)
		w.line(w.buf)
		w.buf = w.buf[:0]
		b = b[i+1:]
	}
	return n, nil
}

func (w *guestWriter) line(l []byte) {
	in := w.in
	level := slog.LevelInfo
	if w.stream == "stderr" {
		level = slog.LevelWarn
		if len(in.fatal) == 0 && (bytes.HasPrefix(l, []byte("panic: ")) || bytes.HasPrefix(l, []byte("fatal error: ")) ||
			bytes.Contains(l, []byte("out of memory"))) {
			in.fatal = append(in.fatal[:0], l...)
		}
	}
	route := ""
	if in.st.chain != nil {
		route = in.st.chain.route
	}
	in.p.log(level, route, in.st.ev.ID, w.stream, l)
}
