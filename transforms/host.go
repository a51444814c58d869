// Package transforms is hookgate's WebAssembly host: it loads plugins
// (compiled once, with an on-disk compilation cache), runs each route's chain
// of plugins over an event from a bounded pool of ready instances, and turns
// what the guests asked for into a delivery.Outcome. The ABI is in
// plugins/abi (its constants) and plugins/ABI.md, its conformance kit in
// plugins/abi/abitest; the design choices in RATIONALE.md.
//
// It knows nothing of fasthttp: the gateway hands it a *delivery.Event and
// reads a *delivery.Outcome.
//
// Lifecycle:
//  1. NewHost, once per process (or per configuration).
//  2. Load, once per [[plugin]]: compile (or fetch from the cache), check
//     exports and imports, start one instance. A bad plugin fails here.
//  3. Chain, once per route: resolve the plugins, give each step a config id.
//  4. Chain.Run, per event, concurrently.
//  5. Close, after the last Run.
package transforms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/transforms/internal/interrupt"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/time/rate"
)

// Defaults for zero PluginSpec limits.
const (
	DefaultTimeout   = 100 * time.Millisecond
	DefaultMaxMemory = 64 << 20
	DefaultMaxOutput = 1 << 20
	// MinStartTimeout is the least a default StartTimeout gives an
	// instance's start. A Go guest's runtime takes about 10 ms to start
	// alone, but a replacement starts while the machine is busy: with
	// the race detector's pass of every package on two cores, CI saw a
	// start take 850 ms, and once more than a second, the floor then.
	// A start that fails for want of time leaves the plugin an instance
	// short, and the next event fails starting one. Only a start that
	// never ends is waited for this long: by its Load, or by the callers
	// waiting for a replacement (they then fail as busy).
	MinStartTimeout = 5 * time.Second
	// MinMaxMemory is the smallest max_memory Load accepts. A Go guest's
	// runtime takes a few MiB of linear memory before it handles anything
	// (see RATIONALE.md for the measurement); below this it cannot start.
	MinMaxMemory = 4 << 20
)

// Log rate limit per plugin, for log() and the guests' stdout/stderr.
const (
	logRate  = 10 // lines per second
	logBurst = 50
)

const pageSize = 64 << 10

// wasmMagic opens every WebAssembly binary module.
var wasmMagic = []byte("\x00asm")

// Options configures a Host.
type Options struct {
	// CacheDir holds wazero's compilation cache, so a restart does not
	// compile again. "" keeps the cache in memory only.
	CacheDir string
	// Logger receives plugin log lines and guest stdout/stderr. nil
	// discards them.
	Logger *slog.Logger

	// Observer, if set, is told about every plugin call (duration and
	// failure kind); *metrics.Registry implements it. nil: no metrics.
	Observer Observer

	// Test and benchmark knobs. interruptBudget is what yield hands out
	// (0: DefaultBudget); the differential tests run guests at budgets
	// down to 1. noInterrupt loads modules as they are, so no deadline is
	// enforced: only for comparing instrumented with uninstrumented runs.
	interruptBudget int32
	noInterrupt     bool
	// noBatch runs every chain on its caller's goroutine (see batcher):
	// to compare the two.
	noBatch bool
}

// PluginSpec is one [[plugin]] of the configuration, with the module bytes.
type PluginSpec struct {
	Name      string
	Wasm      []byte
	Instances int           // pool size; 0 means GOMAXPROCS
	Timeout   time.Duration // wall time per call; 0 means DefaultTimeout
	MaxMemory int64         // linear memory cap in bytes, rounded up to 64 KiB pages; 0 means DefaultMaxMemory
	MaxOutput int64         // bytes a call may produce; 0 means DefaultMaxOutput
	// StartTimeout bounds a new instance's start (_initialize or the start
	// function, a Go guest's runtime starting and its init functions), at
	// Load and for every replacement; 0 means ten timeouts, at least
	// MinStartTimeout. Raise it for a plugin whose init does real work.
	StartTimeout time.Duration
}

// CallObserver records plugin calls: d is the call's wall time, kind is ""
// for success, else the PluginError's Kind. An alias of an unnamed type, so
// gateway/metrics can return the very same type without either package
// importing the other.
type CallObserver = interface {
	Call(d time.Duration, kind string)
}

// Observer hands out one CallObserver per plugin, asked once at Load.
type Observer interface {
	PluginObserver(plugin string) CallObserver
}

// Host runs plugins. It is safe for concurrent use.
type Host struct {
	opts   Options
	logger *slog.Logger
	cache  wazero.CompilationCache
	instr  *instrumented

	mu      sync.Mutex
	plugins map[string]*plugin
	retired []*plugin // replaced by a later Load; closed with the host
	kvs     map[string]*kvStore
	closed  bool

	batch batcher // shared by every chain of the host
}

// configIDs numbers chain steps across every Host, so an id is never reused
// for another configuration even across reloads.
var configIDs atomic.Uint32

// NewHost creates a Host. With opts.CacheDir set, the directory is created
// if needed and compiled modules are kept there.
func NewHost(ctx context.Context, opts Options) (*Host, error) {
	h := &Host{opts: opts, logger: opts.Logger, plugins: map[string]*plugin{}, kvs: map[string]*kvStore{}, instr: newInstrumented(opts.CacheDir)}
	if h.opts.interruptBudget <= 0 {
		h.opts.interruptBudget = DefaultBudget
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("transforms: opening the compilation cache %s: %w", opts.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Load compiles spec.Wasm (or takes it from the compilation cache), checks
// its exports and imports against the ABI, and starts one instance, so a bad
// plugin fails here and not at the first event. Loading the same name with
// the same bytes and limits again does nothing; with anything different, it
// replaces the plugin for chains built afterwards (chains built before keep
// the old one until CloseRetired or Close), and the key-value store carries
// over. So a configuration reload calls Load on the same Host for every
// plugin, takes Plugins, builds the new chains, swaps them in, and calls
// CloseRetired, with the Plugins of the configurations still serving, once
// the old chains are idle.
//
// Refusals are *LoadError values naming the plugin and the cause, e.g.
// `plugin "x": missing export "hookgate_handle"`.
func (h *Host) Load(ctx context.Context, spec PluginSpec) error {
	if spec.Name == "" {
		return errors.New("transforms: a plugin needs a name")
	}
	spec, err := normalize(spec)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(spec.Wasm)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	if old := h.plugins[spec.Name]; old != nil && old.hash == sum && old.sameLimits(spec) {
		h.mu.Unlock()
		return nil
	}
	kv := h.kvs[spec.Name]
	if kv == nil {
		kv = newKVStore(abi.KVMaxEntries)
		h.kvs[spec.Name] = kv
	}
	h.mu.Unlock()

	p, err := h.newPlugin(ctx, spec, sum, kv)
	if err != nil {
		return err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.close(ctx)
		return ErrClosed
	}
	if old := h.plugins[spec.Name]; old != nil {
		h.retired = append(h.retired, old)
	}
	h.plugins[spec.Name] = p
	return nil
}

func normalize(spec PluginSpec) (PluginSpec, error) {
	if len(spec.Wasm) == 0 {
		return spec, &LoadError{Plugin: spec.Name, Err: errors.New("empty module")}
	}
	if spec.Instances <= 0 {
		spec.Instances = runtime.GOMAXPROCS(0)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultTimeout
	}
	if spec.MaxMemory <= 0 {
		spec.MaxMemory = DefaultMaxMemory
	}
	if spec.MaxMemory < MinMaxMemory || spec.MaxMemory > 4<<30 {
		return spec, &LoadError{Plugin: spec.Name, Err: fmt.Errorf("max_memory %d is outside %d (4MiB) .. 4GiB", spec.MaxMemory, MinMaxMemory)}
	}
	if spec.MaxOutput <= 0 {
		spec.MaxOutput = DefaultMaxOutput
	}
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = max(10*spec.Timeout, MinStartTimeout)
	}
	return spec, nil
}

func (h *Host) newPlugin(ctx context.Context, spec PluginSpec, sum [32]byte, kv *kvStore) (*plugin, error) {
	pages := uint32((spec.MaxMemory + pageSize - 1) / pageSize)
	// No WithCloseOnContextDone: the module is instrumented instead (see
	// interrupt.go), which stops every guest shape at a fraction of the
	// cost.
	//
	// Tail calls and threads (atomics) are on for guests built with them;
	// shared memories, the part of threads that can block, are refused by
	// the instrumenter.
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall | experimental.CoreFeaturesThreads).
		WithMemoryLimitPages(pages).
		WithCompilationCache(h.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	p := &plugin{
		name:    spec.Name,
		spec:    spec,
		hash:    sum,
		rt:      rt,
		kv:      kv,
		logger:  h.logger.With("plugin", spec.Name),
		limiter: rate.NewLimiter(logRate, logBurst),
		ready:   make(chan *instance, spec.Instances),
		room:    make(chan struct{}, spec.Instances),
		closing: make(chan struct{}),
	}
	if h.opts.Observer != nil {
		p.obs = h.opts.Observer.PluginObserver(spec.Name)
	}
	fail := func(err error) (*plugin, error) {
		rt.Close(ctx)
		return nil, &LoadError{Plugin: spec.Name, Err: err}
	}
	wasm := spec.Wasm
	if !bytes.HasPrefix(wasm, wasmMagic) {
		// Said plainly, before the rewriter's offset-precise refusal: the
		// usual cause is a wrong path or a file that is not a plugin.
		return fail(errors.New("does not compile: not a WebAssembly binary (it does not start with \\0asm); check the plugin's wasm path"))
	}
	if !h.opts.noInterrupt {
		var err error
		if wasm, err = h.instr.get(spec.Wasm, sum); err != nil {
			return fail(fmt.Errorf("cannot be made interruptible: %w", err))
		}
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return fail(fmt.Errorf("does not compile: %w", err))
	}
	p.compiled = compiled
	if err := checkModule(compiled); err != nil {
		return fail(err)
	}
	_, p.hasInit = compiled.ExportedFunctions()[abi.ExportInitialize]
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(fmt.Errorf("starting WASI: %w", err))
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		return fail(fmt.Errorf("starting %s: %w", abi.HostModule, err))
	}
	if err := instantiateInterruptModule(ctx, rt, h.opts.interruptBudget); err != nil {
		return fail(fmt.Errorf("starting %s: %w", interrupt.ImportModule, err))
	}
	first, err := p.newInstance(ctx)
	if err != nil {
		return fail(fmt.Errorf("failed to start: %w", err))
	}
	p.ready <- first
	for i := 1; i < spec.Instances; i++ {
		p.room <- struct{}{} // created when first needed
	}
	return p, nil
}

// Plugins is the set of plugins one configuration's chains were built
// from: Host.Plugins, taken after that configuration's Loads. Whoever
// runs reloads keeps one per configuration still in use, and hands the
// live ones to CloseRetired.
type Plugins struct{ ps []*plugin }

// Plugins returns the plugins the host holds now, which chains built now
// use.
func (h *Host) Plugins() *Plugins {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &Plugins{ps: make([]*plugin, 0, len(h.plugins))}
	for _, p := range h.plugins {
		s.ps = append(s.ps, p)
	}
	return s
}

// Closed returns how many plugins of the set are closed.
func (s *Plugins) Closed() int {
	n := 0
	for _, p := range s.ps {
		if p.dead.Load() {
			n++
		}
	}
	return n
}

func (s *Plugins) holds(p *plugin) bool {
	for _, q := range s.ps {
		if q == p {
			return true
		}
	}
	return false
}

// CloseRetired closes the plugins that a later Load replaced, except those
// a set in keep holds: the sets of the configurations whose chains may
// still run. Call it once a configuration's chains are idle, with the
// sets of every other configuration still in use; a Run on a closed
// plugin fails with ErrClosed.
func (h *Host) CloseRetired(ctx context.Context, keep ...*Plugins) error {
	h.mu.Lock()
	var ps, kept []*plugin
	for _, p := range h.retired {
		held := false
		for _, s := range keep {
			if s != nil && s.holds(p) {
				held = true
				break
			}
		}
		if held {
			kept = append(kept, p)
		} else {
			ps = append(ps, p)
		}
	}
	h.retired = kept
	h.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.close(ctx))
	}
	return errors.Join(errs...)
}

// Close closes every plugin and the compilation cache. Runs in flight
// finish first, unless ctx ends; Runs after Close fail with ErrClosed.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	ps := h.retired
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// plugin is one loaded module: its runtime, compiled code, pool and store.
type plugin struct {
	name     string
	spec     PluginSpec
	hash     [32]byte
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	hasInit  bool
	kv       *kvStore
	logger   *slog.Logger

	// The pool (see pool.go): ready holds idle instances; room holds a
	// token for each instance not created yet or thrown away. Together
	// they never hold more than Instances.
	ready chan *instance
	room  chan struct{}
	seq   atomic.Uint64 // instance names
	// starting counts replacements being started in the background
	// (refill): a caller whose wait for an instance timed out waits for
	// them too, since an instance on its way is not a busy pool.
	starting atomic.Int32
	dead     atomic.Bool
	closing  chan struct{} // closed by close: wakes calls waiting for an instance

	stats   counters
	obs     CallObserver  // nil: no metrics
	limiter *rate.Limiter // log lines
	dropped atomic.Int64  // log lines dropped by limiter since the last one written
}

func (p *plugin) sameLimits(s PluginSpec) bool {
	return p.spec.Instances == s.Instances && p.spec.Timeout == s.Timeout &&
		p.spec.MaxMemory == s.MaxMemory && p.spec.MaxOutput == s.MaxOutput &&
		p.spec.StartTimeout == s.StartTimeout
}

// close stops the plugin: new calls fail with ErrClosed, calls in flight
// finish (each bounded by the timeout) and their instances are closed as
// they come back; then the runtime is closed. If ctx ends first, the
// runtime is closed under the remaining calls.
func (p *plugin) close(ctx context.Context) error {
	if p.dead.Swap(true) {
		return nil
	}
	close(p.closing)
	for range p.spec.Instances {
		select {
		case in := <-p.ready:
			in.close()
		case <-p.room:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), p.rt.Close(context.Background()))
		}
	}
	return p.rt.Close(ctx)
}
