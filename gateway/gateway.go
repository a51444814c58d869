package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/gateway/target"
)

// Deps are what a route table is built from besides the config. A Reload
// takes a fresh set: the old one stays in use by requests that started
// before the swap, then Release is called.
type Deps struct {
	Targets *target.Set  // clients of every target in the config
	Chains  ChainBuilder // nil: a route with transforms is refused
	Queue   Queue        // nil: an async route is refused
	// Disabled, if set, says which targets are disabled (disable_after):
	// a sync route does not forward to them (forward.go).
	Disabled Disabled
	// Dedupe, if set, is where routes' dedupe keys are shared with the
	// other gateways on the same queue (SharedDedupe).
	Dedupe SharedDedupe
	Logger *slog.Logger // nil: slog.Default(); the gateway's own trouble (panics, queue errors)
	// Recorder is told of every request's answer, chain and sync attempts
	// (record.Tee of the log lines, the metrics, the journal). nil: the
	// log lines only (record.Log, with access lines as the config says).
	Recorder record.Recorder

	// Release, if set, is called exactly once, when the table built from
	// these deps is done: a Reload replaced it (or Shutdown ran), and the
	// requests and Refs still using it have finished. It runs on the
	// goroutine that dropped the last reference (a request's, often), so
	// it should hand slow work to a goroutine. internal/server closes the
	// generation's target clients and replaced plugins there.
	Release func()
}

// Gateway is the ingest server.
//
// Lifecycle:
//  1. New builds the route table and the fasthttp server; nothing listens yet.
//  2. Serve accepts requests until Shutdown.
//  3. Reload swaps in a new table at any time; a failed Reload changes nothing.
//  4. Shutdown stops accepting, waits for requests in flight, then drops
//     the last table's "current" reference; its deps are released once
//     nothing else holds it.
type Gateway struct {
	log *slog.Logger
	srv *fasthttp.Server

	tbl      atomic.Pointer[table]
	reloadMu sync.Mutex // one Reload at a time, and none after Shutdown
	down     bool       // Shutdown dropped the current table's reference; under reloadMu

	maxInflight int64 // server.max_concurrency; 0 = no cap
	inflight    atomic.Int64
	maxConns    int64 // open connections before a JSON 503; 0 = no cap
	maxBodyMem  int64 // server.max_body_memory; 0 = no budget
	// maxAddrBodyMem is what the requests of one client address may hold
	// of the budget: server.per_ip_share of it (half by default), so one
	// address cannot starve the others.
	maxAddrBodyMem int64
	bodyMem        atomic.Int64
	unrouted       *routeStats // refusals of requests that matched no route

	// ctx is handed to plugin chains; it ends when Shutdown gives up
	// waiting, so plugins in flight stop then, not at the first signal.
	ctx    context.Context
	cancel context.CancelFunc

	states sync.Pool    // *reqState
	fanout chan *fanJob // to idle fan-out workers; never closed (they stop on ctx)

	server   config.Server // listener settings, fixed at New
	shutdown time.Duration
}

// fanoutWorkers is how many goroutines wait to send the second and later
// deliveries of a sync fan-out. Past that, a send starts a goroutine of
// its own (an allocation, but no waiting).
const fanoutWorkers = 64

// New builds a gateway for cfg. It fails, naming every route at fault,
// when a route needs something deps does not provide.
func New(cfg *config.Config, deps Deps) (*Gateway, error) {
	if cfg == nil {
		return nil, errors.New("gateway: no config")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	t, err := buildTable(cfg, deps, nil)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		maxBodyMem:     cfg.Server.MaxBodyMemory,
		maxAddrBodyMem: share(cfg.Server.MaxBodyMemory, cfg.Server.PerIPShare),
		unrouted:       new(routeStats),
		log:            deps.Logger,
		maxInflight:    int64(cfg.Server.MaxConcurrency),
		fanout:         make(chan *fanJob),
		shutdown:       cfg.Server.ShutdownTimeout,
		server:         cfg.Server,
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.states.New = func() any { return new(reqState) }
	g.tbl.Store(t)

	if g.maxInflight > 0 {
		// Requests in flight are capped at max_concurrency by the handler
		// (JSON 503). Connections, idle keep-alive ones included, are
		// capped well above that by connLimitListener (JSON 503 too);
		// fasthttp's own cap, whose plain-text 503 we cannot reword, sits
		// above both and is never reached.
		g.maxConns = max(4*g.maxInflight, 64)
	}
	concurrency := 0 // fasthttp's default
	if g.maxConns > 0 {
		concurrency = int(g.maxConns) + 16
	}
	g.srv = &fasthttp.Server{
		Handler:      g.handle,
		ErrorHandler: g.handleReadError,
		// The handler reads bodies itself, as they arrive (admit.go):
		// bodyHead has fasthttp read one byte of a body at most, expect
		// answers "Expect: 100-continue", connState restarts the head
		// scanner (listener.go).
		StreamRequestBody: true,
		HeaderReceived:    g.bodyHead,
		ExpectHandler:     g.expect,
		ConnState:         connState,
		// No Server header: an edge has no reason to name its software.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// ctx.Time() is never asked for (begin stamps the request): no
		// clock read for it a request.
		LazyRequestTime: true,
		// No ReadTimeout, WriteTimeout or IdleTimeout: the connections
		// keep them (countedConn.timeouts, listener.go), without reading
		// the clock each time.
		ReadBufferSize:     cfg.Server.MaxHeaderBytes,
		MaxRequestBodySize: t.maxBody,
		Concurrency:        concurrency,
		CloseOnShutdown:    true,
		// A body is read as sent, never parsed: verify signs the raw bytes,
		// and a multipart body must not turn into files on disk.
		DisablePreParseMultipartForm: true,
		// A keep-alive connection keeps its request context and I/O
		// buffers between requests: fasthttp's ReduceMemoryUsage, which
		// gives them back after every request, costs an extra read
		// system call and an allocation per request (~5% CPU). What it
		// protected against, an idle connection keeping the largest body
		// it ever carried outside the body memory budget, is prevented
		// where bodies are set instead: finish drops a request body
		// buffer over keepBodyMax and setAnswerBody never copies a larger
		// answer into the connection's buffer. What an idle connection
		// keeps is bounded: its read buffer (max_header_bytes), a 4KiB
		// write buffer and two body buffers of at most keepBodyMax.
		ReduceMemoryUsage: false,
		// fasthttp quotes the bytes it could not parse in its errors, and
		// those bytes may be a sender's credential: log none of them.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{g.log},
	}
	n := fanoutWorkers
	if p := runtime.GOMAXPROCS(0) * 8; p > n {
		n = p
	}
	for range n {
		go g.fanoutWorker()
	}
	return g, nil
}

// Serve accepts requests on ln until Shutdown. It returns nil after a
// Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	ln = &connLimitListener{Listener: ln, max: g.maxConns, perAddr: share(g.maxConns, g.server.PerIPShare), headMax: g.server.MaxHeaderBytes,
		readTimeout: g.server.ReadTimeout, writeTimeout: g.server.WriteTimeout, idleTimeout: g.server.IdleTimeout}
	return g.srv.Serve(ln)
}

// Handler is the ingest handler, for driving the gateway without a
// listener (benchmarks, in-memory tests). Serve uses it too.
func (g *Gateway) Handler() fasthttp.RequestHandler { return g.handle }

// Shutdown stops accepting connections and waits for requests in flight to
// finish, until ctx ends or server.shutdown_timeout passes, whichever is
// first. Requests still running then have their plugin calls cancelled.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if g.shutdown > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.shutdown)
		defer cancel()
	}
	err := g.srv.ShutdownWithContext(ctx)
	g.cancel()
	g.reloadMu.Lock()
	if !g.down {
		g.down = true
		// Drained (or given up): the deps are released now, or when the
		// last stuck request ends, whose plugin calls ctx just cancelled.
		g.tbl.Load().release()
	}
	g.reloadMu.Unlock()
	if err != nil {
		return fmt.Errorf("gateway: shutdown: requests still in flight after the shutdown timeout: %w", err)
	}
	return nil
}

// ServerConfig returns the [server] settings the listener was built with;
// a reload does not change them.
func (g *Gateway) ServerConfig() config.Server { return g.server }

// Config returns the configuration currently served.
func (g *Gateway) Config() *config.Config { return g.tbl.Load().cfg }

// Reload builds a route table for cfg beside the running one and swaps it
// in. Requests in flight finish on the table they started with; the old
// deps are released once they (and any Ref to it) have. On error nothing
// changes; the caller still owns deps.
//
// # Notes
//
// Listener settings (listen address, timeouts, header size, concurrency)
// are fixed at New; a reload that changes them takes effect on restart.
func (g *Gateway) Reload(cfg *config.Config, deps Deps) error {
	if cfg == nil {
		return errors.New("gateway: reload: no config")
	}
	if deps.Logger == nil {
		deps.Logger = g.log
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.down {
		return errors.New("gateway: reload: the gateway is shut down")
	}
	t, err := buildTable(cfg, deps, g.tbl.Load())
	if err != nil {
		return fmt.Errorf("gateway: reload: %w", err)
	}
	g.tbl.Swap(t).release() // the old table's "current" reference
	return nil
}

// Ref holds the route table that was current when Acquire returned it,
// and so its Deps: they are not released before Ref.Release. The zero Ref
// holds nothing.
type Ref struct{ t *table }

// Acquire returns a reference to the current table, for work that uses
// its deps beyond a request (internal/server's delivery lanes use its
// target clients). false after Shutdown.
func (g *Gateway) Acquire() (Ref, bool) {
	if t := g.acquire(); t != nil {
		return Ref{t}, true
	}
	return Ref{}, false
}

// Release gives the reference back; call it once.
func (r Ref) Release() {
	if r.t != nil {
		r.t.release()
	}
}

// acquire returns the current table with one more reference, or nil after
// Shutdown. It allocates nothing: a table that a Reload retired between
// the load and the CAS is at 0 only if nothing else held it, and then the
// pointer has moved on, so the loop takes the new one.
func (g *Gateway) acquire() *table {
	for {
		t := g.tbl.Load()
		if t.retain() {
			return t
		}
		if g.tbl.Load() == t {
			return nil // Shutdown dropped the last table's reference
		}
	}
}

// fasthttpLogger sends fasthttp's own messages (accept errors and the
// like) to the structured log.
//
// "error when serving connection" follows every request the ErrorHandler
// answered (handleReadError has logged its one line already), and write
// errors to a sender that went away: it goes to debug, so a refused
// request is one line, as the README promises.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	level := slog.LevelWarn
	if strings.HasPrefix(format, "error when serving connection") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "fasthttp")
}

// share is what one client address may hold of total (server.per_ip_share;
// 0, a config built by hand, means half). At least 1 of a cap that is set.
func share(total int64, f float64) int64 {
	if f <= 0 || f > 1 {
		f = 0.5
	}
	if total <= 0 {
		return total
	}
	return max(int64(float64(total)*f), 1)
}
