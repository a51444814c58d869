package target

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/internal/connset"
)

// pipeline is a target's pipelined transport (config pipeline = N): its
// requests go out over at most N connections, several to a write, and
// their answers come back several to a read, in order (fasthttp's
// PipelineClient).
//
// Why: a target that is woken for each request costs a wake-up per
// request, on its side and (on a shared core) on hookgate's; pipelined, it
// is woken once for several and its CPU per request halves
// (benchmarks/README.md, twenty-fifth run). Why it is not the default:
// HTTP/1.1 servers must take pipelined requests, but some proxies and
// appliances do not, and one slow answer holds up the ones behind it on
// its connection.
//
// What the pipeline alone would get wrong, and how it is kept from the
// caller:
//   - A connection lost with requests on it (the target closed it after
//     an answer with "Connection: close", after an oversized answer, on a
//     restart, or at its keep-alive timeout) fails all of them at once.
//     Each is sent once more at once on the host client's connections
//     (resend), as the host client does with a stale pooled connection;
//     the Idempotency-Key lets the target drop one it had taken.
//   - A failed dial, or a refused TLS handshake, is only logged, and the
//     requests wait for their timeout. So the dial is hookgate's: its
//     error is kept, a request that timed out after it gets that error
//     (a 502 "connection refused" rather than a 504 "timed out"), and for
//     a second after it requests go by the host client, which dials
//     itself and fails at once, or succeeds once the target is back.
//   - It has no Close: its connections are tracked here, so Close and
//     DropIdle (a breaker's probe) can close them when idle, and a fresh
//     PipelineClient takes the next requests.
type pipeline struct {
	pc      atomic.Pointer[fasthttp.PipelineClient] // replaced by closeIdle
	cfg     pipelineCfg
	dialer  *fasthttp.TCPDialer
	timeout time.Duration
	tls     *tls.Config // nil for http

	failed atomic.Pointer[dialFailure] // the last dial's failure; nil after a success

	conns connset.Set // open, for closeIdle
}

type pipelineCfg struct {
	addr        string
	n, maxConns int
	idle        time.Duration
	maxResponse int
}

type dialFailure struct {
	err error
	at  time.Time
}

// dialBackoff is how long after a failed dial requests go by the host
// client: fasthttp's pipeline waits a second before it dials again.
const dialBackoff = time.Second

// newPipeline: isTLS for an https target, whose tlsCfg is nil without a
// tls table (Go's defaults, as the host client takes them).
func newPipeline(addr string, n, maxConns int, timeout, idle time.Duration, maxResponse int, dialer *fasthttp.TCPDialer, isTLS bool, tlsCfg *tls.Config, host string) *pipeline {
	p := &pipeline{dialer: dialer, timeout: timeout}
	if isTLS {
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsCfg != nil {
			p.tls = tlsCfg.Clone()
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = host
		}
	}
	p.cfg = pipelineCfg{addr: addr, n: n, maxConns: maxConns, idle: idle, maxResponse: maxResponse}
	p.pc.Store(p.newClient())
	return p
}

// newClient is a fresh PipelineClient: one at start, and one each time
// closeIdle drops the connections of the one before (it has no Close).
func (p *pipeline) newClient() *fasthttp.PipelineClient {
	return &fasthttp.PipelineClient{
		Addr:     p.cfg.addr,
		Name:     "hookgate",
		Dial:     p.dial, // TLS included: see dial
		MaxConns: p.cfg.n,
		// All of max_conns may wait on one connection: the dispatcher's
		// workers and the sync routes bound what is in flight, not this.
		MaxPendingRequests: p.cfg.maxConns,
		// A connection whose answers stop is closed after timeout (and
		// its requests resent) rather than kept with every later request
		// queued behind the silent one.
		ReadTimeout:            p.timeout,
		WriteTimeout:           p.timeout,
		MaxIdleConnDuration:    p.cfg.idle,
		MaxResponseBodySize:    p.cfg.maxResponse,
		DisablePathNormalizing: true,
		Logger:                 quiet{}, // every error reaches a caller (dial, resend)
	}
}

// dial opens a pipelined connection, with the TLS handshake done here so
// that its failure is kept like a refused dial's.
func (p *pipeline) dial(addr string) (net.Conn, error) {
	conn, err := p.dialer.DialTimeout(addr, p.timeout)
	if err == nil && p.tls != nil {
		tc := tls.Client(conn, p.tls)
		_ = tc.SetDeadline(time.Now().Add(p.timeout))
		if err = tc.Handshake(); err != nil {
			conn.Close()
		} else {
			_ = tc.SetDeadline(time.Time{})
			conn = tc
		}
	}
	if err != nil {
		p.failed.Store(&dialFailure{err: err, at: time.Now()})
		return nil, err
	}
	p.failed.Store(nil)
	return p.conns.Add(conn), nil
}

// failedDial is the last dial's failure if it came at or after since.
func (p *pipeline) failedDial(since time.Time) error {
	if f := p.failed.Load(); f != nil && !f.at.Before(since) {
		return f.err
	}
	return nil
}

// closeIdle closes the pipeline's connections if no request is on them.
// The PipelineClient is replaced first: the old one would not notice its
// closed connections until its next request failed on one.
func (p *pipeline) closeIdle() {
	if p.pc.Load().PendingRequests() > 0 {
		return
	}
	if p.conns.Len() == 0 {
		return
	}
	p.pc.Store(p.newClient())
	p.conns.CloseAll()
}

// errPipelineStopped is fasthttp's unexported error for the requests of a
// pipelined connection that stopped before their answers came.
const errPipelineStopped = "pipeline connection has been stopped"

// lostOnPipeline says whether a pipelined send failed because its
// connection went away (before or while its answer came), so that it may
// be sent once more on a fresh connection.
func lostOnPipeline(err error) bool {
	return err != nil && (err.Error() == errPipelineStopped || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

// sendPipelined makes one pipelined round trip for req, whose body is body; see
// pipeline for the resend and the dial's errors.
func (c *Client) sendPipelined(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, body []byte) error {
	p := c.pl
	start := time.Now()
	if p.failedDial(start.Add(-dialBackoff)) != nil {
		return c.hc.DoTimeout(req, resp, timeout)
	}
	err := p.pc.Load().DoTimeout(req, resp, timeout)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fasthttp.ErrTimeout):
		if derr := p.failedDial(start); derr != nil {
			return derr
		}
		return err
	case !lostOnPipeline(err):
		return err
	}
	left := timeout - time.Since(start)
	if left <= 0 {
		return fasthttp.ErrTimeout
	}
	// The pipeline took the body (see build); the host client's send is
	// done before this returns, so it may borrow it.
	req.SetBodyRaw(body)
	resp.Reset()
	return c.hc.DoTimeout(req, resp, left)
}

// quiet is the pipeline's logger: what it would log reaches a caller as
// an error.
type quiet struct{}

func (quiet) Printf(string, ...any) {}
