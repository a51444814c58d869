package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// LoadSpec describes the requests one scenario sends.
//
// Two load models:
//   - closed loop (Rate == 0): Conns workers, each on its own keep-alive
//     connection, send back to back, as wrk does. Throughput is what the
//     server can sustain at that concurrency; latency is per request.
//   - open loop (Rate > 0): sends are scheduled at a fixed rate, and
//     latency is measured from the scheduled send time, not from when a
//     worker got round to it, as wrk2 does. A stalled server therefore
//     shows up in the tail instead of silently slowing the generator
//     (coordinated omission). Conns bounds the requests in flight.
type LoadSpec struct {
	URL         string
	Method      string
	Body        []byte
	ContentType string
	Headers     [][2]string
	Conns       int
	Rate        float64
	Timeout     time.Duration // per request; bounds how long a run can overrun
	// EventIDs records the key (idKey) of the Hookgate-Event-Id of every
	// 2xx, for the async scenarios' delivered check. The header, not the
	// JSON body: the hot loop pays a header lookup, a hash and an append
	// (65-90 ns measured, against several µs per request), and only the
	// async scenarios ask for it.
	EventIDs bool
}

// eventIDHeader is where hookgate's ingest answer names the event (its
// body does too, as event_id).
const eventIDHeader = "Hookgate-Event-Id"

// Generator holds the connections of one scenario, so the warm-up and the
// measurement run over the same pool.
type Generator struct {
	spec   LoadSpec
	client *fasthttp.HostClient
	uri    string
}

// NewGenerator checks spec and builds its client. Only http:// is
// supported: the harness measures loopback, not TLS.
func NewGenerator(spec LoadSpec) (*Generator, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("benchmarks: bad target URL %q: %v", spec.URL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("benchmarks: target URL %q must be http://host:port/path", spec.URL)
	}
	if spec.Conns < 1 {
		return nil, errors.New("benchmarks: --conns must be at least 1")
	}
	if spec.Method == "" {
		spec.Method = fasthttp.MethodPost
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 10 * time.Second
	}
	c := &fasthttp.HostClient{
		Addr:                          u.Host,
		MaxConns:                      spec.Conns,
		MaxConnWaitTimeout:            spec.Timeout,
		ReadTimeout:                   spec.Timeout,
		WriteTimeout:                  spec.Timeout,
		MaxIdleConnDuration:           time.Minute,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		// A retried request would be counted once but sent twice.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return &Generator{spec: spec, client: c, uri: spec.URL}, nil
}

// Close drops the pooled connections.
func (g *Generator) Close() { g.client.CloseIdleConnections() }

// Sample is the raw outcome of one Run.
type Sample struct {
	Hist      *hdrhistogram.Histogram
	Requests  int64 // completed, whatever the outcome
	OK        int64
	Non2xx    int64
	Transport int64
	Unsent    int64
	Statuses  map[int]int64
	Elapsed   time.Duration
	FirstErr  string
	// With LoadSpec.EventIDs: the idKey of the event id of every 2xx, and
	// how many 2xx named no event.
	EventIDs []uint64
	NoID     int64
}

// RPS is completed requests per second of the run.
func (s *Sample) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}

// worker is one connection's state: its own request, response and
// histogram, so the hot loop shares nothing but two atomics.
type worker struct {
	req       *fasthttp.Request
	resp      *fasthttp.Response
	hist      *hdrhistogram.Histogram
	statuses  map[int]int64
	requests  int64
	ok        int64
	non2xx    int64
	transport int64
	firstErr  error
	recordIDs bool
	ids       []uint64
	noID      int64
}

func (g *Generator) newWorker() *worker {
	w := &worker{
		req:       fasthttp.AcquireRequest(),
		resp:      fasthttp.AcquireResponse(),
		hist:      newHist(),
		statuses:  map[int]int64{},
		recordIDs: g.spec.EventIDs,
	}
	w.req.SetRequestURI(g.uri)
	w.req.Header.SetMethod(g.spec.Method)
	if g.spec.ContentType != "" {
		w.req.Header.SetContentType(g.spec.ContentType)
	}
	for _, h := range g.spec.Headers {
		w.req.Header.Set(h[0], h[1])
	}
	if len(g.spec.Body) > 0 {
		w.req.SetBodyRaw(g.spec.Body)
	}
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.req)
	fasthttp.ReleaseResponse(w.resp)
}

// send does one request and records it against since (the send time in
// closed loop, the scheduled time in open loop).
func (w *worker) send(c *fasthttp.HostClient, since time.Time) {
	err := c.Do(w.req, w.resp)
	recordLatency(w.hist, time.Since(since))
	w.requests++
	if err != nil {
		w.transport++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	code := w.resp.StatusCode()
	w.statuses[code]++
	if code >= 200 && code < 300 {
		w.ok++
		if w.recordIDs {
			if id := w.resp.Header.Peek(eventIDHeader); len(id) > 0 {
				w.ids = append(w.ids, idKey(id))
			} else {
				w.noID++
			}
		}
	} else {
		w.non2xx++
	}
}

// Run drives load for d and returns what happened. Requests still in
// flight at the end are waited for (at most Timeout) and counted.
func (g *Generator) Run(d time.Duration) *Sample {
	workers := make([]*worker, g.spec.Conns)
	for i := range workers {
		workers[i] = g.newWorker()
	}
	var stop atomic.Bool
	var unsent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()

	if g.spec.Rate <= 0 {
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					w.send(g.client, time.Now())
				}
			}()
		}
	} else {
		// One shared ticket counter: ticket i is due at start + i/rate.
		// Whichever worker is free takes the next ticket; when none is
		// free the due times slip past and the wait lands in the
		// latency, where it belongs.
		interval := time.Duration(float64(time.Second) / g.spec.Rate)
		if interval <= 0 {
			interval = 1
		}
		total := int64(d / interval)
		var next atomic.Int64
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					due := start.Add(time.Duration(i) * interval)
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					if stop.Load() || time.Now().After(end) {
						// Count every ticket this worker would have sent
						// as unsent, then leave: the run is over.
						unsent.Add(1)
						for next.Add(1)-1 < total {
							unsent.Add(1)
						}
						return
					}
					w.send(g.client, due)
				}
			}()
		}
	}
	wg.Wait()
	s := &Sample{Hist: newHist(), Statuses: map[int]int64{}, Elapsed: time.Since(start), Unsent: unsent.Load()}
	// In closed loop the last requests finish after d; count the time
	// they took, or the rate would be overstated by up to one latency.
	for _, w := range workers {
		s.Hist.Merge(w.hist)
		s.Requests += w.requests
		s.OK += w.ok
		s.Non2xx += w.non2xx
		s.Transport += w.transport
		for k, v := range w.statuses {
			s.Statuses[k] += v
		}
		if s.FirstErr == "" && w.firstErr != nil {
			s.FirstErr = w.firstErr.Error()
		}
		s.EventIDs = append(s.EventIDs, w.ids...)
		s.NoID += w.noID
		w.release()
	}
	return s
}

// isLoopbackURL reports whether raw points at this machine: the harness
// generates real load and must never aim it at someone else's host.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
