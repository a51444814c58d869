package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The benchmark sink is the target every scenario ends at: a minimal
// fasthttp server that answers 200 {"ok":true} and counts what it got.
//
// Why not `hookgate sink`: that is a capture tool for tests (it keeps
// requests for inspection), and it changes with the product. The ceiling
// ("direct") and every proxy must end at the same, cheapest possible
// server, and the async scenario needs a delivered count, which this sink
// serves at countPath. The harness runs it as a copy of itself
// (HOOKGATE_BENCH_ROLE=sink) on the server CPUs, one fresh sink per
// measurement, exactly the same in every scenario but for the id log of
// the async scenarios (HOOKGATE_BENCH_IDS=1, served at idsPath).
const (
	countPath = "/__bench/count"
	idsPath   = "/__bench/ids"
)

var sinkBody = []byte(`{"ok":true}`)

// idHeader carries the delivery id ("<event id>.<index>"): hookgate's
// default id_header, which the harness's config leaves alone.
const idHeader = "Idempotency-Key"

// idKey is a delivery or event id as the sink and the generator keep it:
// its 64-bit FNV-1a. Eight bytes a delivery keeps a 10-minute run's ids in
// memory on both sides; two ids of one run share a key with odds of about
// n²/2^65, and a shared key could only hide a loss, never invent one.
func idKey(id []byte) uint64 { return idKeyAppend(14695981039346656037, id) }

// idKeyAppend continues key over more bytes: the key of "evt_x.0" is
// idKeyAppend(idKey("evt_x"), ".0").
func idKeyAppend(key uint64, b []byte) uint64 {
	for _, c := range b {
		key ^= uint64(c)
		key *= 1099511628211
	}
	return key
}

// idLog is the key of every delivery the sink received, in order, 0 for
// one without idHeader. An append under a mutex, not a set: it adds 60-100
// ns to the sink's ~7 µs per request (about 1%), and the harness does the
// comparing after the measurement.
type idLog struct {
	mu   sync.Mutex
	keys []uint64
}

func (l *idLog) add(id []byte) {
	k := uint64(0)
	if len(id) > 0 {
		k = idKey(id)
	}
	l.mu.Lock()
	l.keys = append(l.keys, k)
	l.mu.Unlock()
}

// serve answers GET idsPath?from=N with the keys from the Nth on, 8 bytes
// little-endian each, so the harness fetches only what is new.
func (l *idLog) serve(ctx *fasthttp.RequestCtx) {
	from, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("from")))
	l.mu.Lock()
	var keys []uint64
	if from >= 0 && from < len(l.keys) {
		keys = l.keys[from:]
	}
	b := make([]byte, 0, 8*len(keys))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, k)
	}
	l.mu.Unlock()
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(b)
}

// sinkHandler answers every request but the count and ids queries with
// 200. ids is nil when the sink keeps no id log.
func sinkHandler(count *atomic.Int64, ids *idLog) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case countPath:
			ctx.SetContentType("text/plain")
			ctx.SetBodyString(strconv.FormatInt(count.Load(), 10))
			return
		case idsPath:
			if ids == nil {
				ctx.Error("this sink keeps no id log", fasthttp.StatusNotFound)
				return
			}
			ids.serve(ctx)
			return
		}
		if ids != nil {
			// Before the count: a count of n promises n ids in the log.
			ids.add(ctx.Request.Header.Peek(idHeader))
		}
		count.Add(1)
		ctx.SetContentType("application/json")
		ctx.SetBody(sinkBody)
	}
}

func newSinkServer(count *atomic.Int64, ids *idLog) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       sinkHandler(count, ids),
		Name:                          "bench-sink",
		ReadTimeout:                   time.Minute,
		IdleTimeout:                   time.Minute,
		DisableHeaderNamesNormalizing: true,
		NoDefaultDate:                 true,
		Concurrency:                   1 << 16,
	}
}

// runSinkRole is main for the sink copy: serve until SIGTERM.
func runSinkRole() {
	addr := os.Getenv(envListen)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchmarks sink: listen %s: %v\n", addr, err)
		os.Exit(1)
	}
	var count atomic.Int64
	var ids *idLog
	if os.Getenv(envIDs) == "1" {
		ids = &idLog{}
	}
	srv := newSinkServer(&count, ids)
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		_ = srv.Shutdown()
	}()
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "benchmarks sink: %v\n", err)
		os.Exit(1)
	}
}

// startSink runs the sink as a child process on the server CPUs, with an
// id log when recordIDs.
func startSink(env *Env, recordIDs bool) (*Child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	vars := []string{envRole + "=sink", envListen + "=" + addr}
	if recordIDs {
		vars = append(vars, envIDs+"=1")
	}
	c, err := startChild(env.Split, env.Dir, "sink", vars, self)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(c, addr, 10*time.Second); err != nil {
		c.Stop(time.Second)
		return nil, "", err
	}
	return c, addr, nil
}

// sinkCount asks the sink how many requests it has received.
func sinkCount(addr string) (int64, error) {
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+countPath, 5*time.Second)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("benchmarks: sink count answered %d", code)
	}
	return strconv.ParseInt(string(body), 10, 64)
}

// sinkIDs appends to keys the sink's id log from len(keys) on.
func sinkIDs(addr string, keys []uint64) ([]uint64, error) {
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+idsPath+"?from="+strconv.Itoa(len(keys)), 30*time.Second)
	if err != nil {
		return keys, err
	}
	if code != 200 {
		return keys, fmt.Errorf("benchmarks: sink ids answered %d %s", code, firstLine(string(body)))
	}
	if len(body)%8 != 0 {
		return keys, fmt.Errorf("benchmarks: sink ids: %d bytes, not a multiple of 8", len(body))
	}
	for i := 0; i < len(body); i += 8 {
		keys = append(keys, binary.LittleEndian.Uint64(body[i:]))
	}
	return keys, nil
}
