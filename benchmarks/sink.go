package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
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
// measurement, exactly the same in every scenario.
const countPath = "/__bench/count"

var sinkBody = []byte(`{"ok":true}`)

// sinkHandler answers every request but the count query with 200.
func sinkHandler(count *atomic.Int64) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == countPath {
			ctx.SetContentType("text/plain")
			ctx.SetBodyString(strconv.FormatInt(count.Load(), 10))
			return
		}
		count.Add(1)
		ctx.SetContentType("application/json")
		ctx.SetBody(sinkBody)
	}
}

func newSinkServer(count *atomic.Int64) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       sinkHandler(count),
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
	srv := newSinkServer(&count)
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

// startSink runs the sink as a child process on the server CPUs.
func startSink(env *Env) (*Child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	c, err := startChild(env.Split, env.Dir, "sink", []string{envRole + "=sink", envListen + "=" + addr}, self)
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
