package sdk

import (
	"fmt"
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
)

// Handler handles one event. Returning a non-nil error fails the call: the
// host records the error's message and the event is not delivered.
type Handler func(e *Event) error

var handler Handler

// Handle registers the plugin's handler. Call it from an init function of
// package main; the host runs init functions (through _initialize) before
// the first event.
func Handle(h Handler) { handler = h }

// Event is the event being handled, and the handle through which the
// handler states the outcome. One Event is reused for every call: never keep
// it, or anything it returned, after the handler returns.
type Event struct {
	bodyLen  int32
	configID int32

	body     []byte
	haveBody bool
	config   []byte // a fresh slice per call that reads it: see Config
	haveConf bool
	scratch  []byte // metadata, headers, query values, KV values

	deliveries []*Delivery // reused across calls; the first emitted are live
	emitted    int
	resp       Response

	// err is the first failure of an outcome function; the call fails with
	// it even when the handler returns nil, so an emit to an unknown target
	// is never silently lost.
	err error
}

// ev is the one Event: a wasm instance handles one call at a time.
var ev Event

// call runs the registered handler for one host call and returns the
// hookgate_handle result: 0 done, 1 failed.
func call(bodyLen, configID int32) (rc int32) {
	e := &ev
	e.bodyLen = bodyLen
	e.configID = configID
	e.haveBody = false
	e.haveConf = false
	e.emitted = 0
	e.resp = Response{e: e}
	e.err = nil
	defer func() {
		// A panic would otherwise exit the instance; reporting it as a
		// failure names the bug and keeps the instance usable.
		if p := recover(); p != nil {
			hostcall.Fail(fmt.Sprint("panic: ", p))
			rc = 1
		}
	}()
	if handler == nil {
		hostcall.Fail("sdk: no handler registered: call sdk.Handle(yourFunc) in an init function of package main")
		return 1
	}
	err := handler(e)
	if err == nil {
		err = e.err
	}
	if err != nil {
		hostcall.Fail(err.Error())
		return 1
	}
	return 0
}

// read fills buf with a variable-length host value, following the
// buffer-limit-and-retry rule: one call when buf is large enough, a second
// after growing it otherwise. ok is false when the value is absent.
func read(buf []byte, f func(buf []byte) int32) (_ []byte, ok bool) {
	buf = buf[:cap(buf)]
	n := f(buf)
	if n < 0 {
		return buf[:0], false
	}
	if int(n) > len(buf) {
		buf = make([]byte, grow(int(n)))
		if n = f(buf); n < 0 || int(n) > len(buf) {
			return buf[:0], false
		}
	}
	return buf[:n], true
}

// grow rounds n up so a buffer that grows once rarely grows again.
func grow(n int) int {
	c := 256
	for c < n {
		c *= 2
	}
	return c
}

// Body returns the event's body as it was when the call started. It is read
// from the host once per call into a buffer reused across calls.
//
// # Notes
//
// The slice, and every Result sdk.Get returns from it, is valid only until
// the handler returns: copy what you keep (bytes.Clone, strings.Clone).
func (e *Event) Body() []byte {
	if e.haveBody {
		return e.body
	}
	if cap(e.body) < int(e.bodyLen) {
		e.body = make([]byte, grow(int(e.bodyLen)))
	}
	e.body, _ = read(e.body, hostcall.BodyRead)
	e.haveBody = true
	return e.body
}

// Config returns this step's configuration as raw JSON ("{}" when none).
// Prefer LoadConfig, which parses it once per configuration, not per call.
//
// Unlike Body, the returned slice is never reused, so a parsed config may
// keep strings that sdk.Get found in it.
func (e *Event) Config() []byte {
	if !e.haveConf {
		e.config, _ = read(nil, func(b []byte) int32 { return hostcall.MetaRead(abi.MetaConfig, b) })
		e.haveConf = true
	}
	return e.config
}

// ConfigID identifies this step's configuration: stable while it is loaded,
// never reused for another one.
func (e *Event) ConfigID() int32 { return e.configID }

func (e *Event) meta(key int32) []byte {
	e.scratch, _ = read(e.scratch, func(b []byte) int32 { return hostcall.MetaRead(key, b) })
	return e.scratch
}

// Method returns the request method, e.g. "POST".
func (e *Event) Method() string {
	b := e.meta(abi.MetaMethod)
	// Common methods come back without allocating.
	switch string(b) {
	case "POST":
		return "POST"
	case "GET":
		return "GET"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	}
	return string(b)
}

// The last path and route seen are kept: a plugin mostly serves one route,
// so asking for them again costs no allocation.
var lastPath, lastRoute string

// Path returns the request path, e.g. "/hooks/howxm".
func (e *Event) Path() string {
	if b := e.meta(abi.MetaPath); string(b) != lastPath {
		lastPath = string(b)
	}
	return lastPath
}

// Route returns the name of the route the event arrived on.
func (e *Event) Route() string {
	if b := e.meta(abi.MetaRoute); string(b) != lastRoute {
		lastRoute = string(b)
	}
	return lastRoute
}

// RawQuery returns the request's query string, without '?'.
func (e *Event) RawQuery() string { return string(e.meta(abi.MetaQuery)) }

// ID returns the event id, e.g. "evt_01JD...": unique per accepted request,
// and the same on every retry of its deliveries.
func (e *Event) ID() string { return string(e.meta(abi.MetaEventID)) }

// ReceivedAt returns when the gateway received the event.
func (e *Event) ReceivedAt() time.Time { return time.Unix(0, hostcall.ReceivedAt()) }

// Header returns the first request header named name (case-insensitive), or
// "" when there is none.
func (e *Event) Header(name string) string {
	v, _ := e.LookupHeader(name)
	return v
}

// LookupHeader is Header that also tells whether the header is present.
func (e *Event) LookupHeader(name string) (string, bool) {
	b, ok := read(e.scratch, func(b []byte) int32 { return hostcall.HeaderGet(name, b) })
	e.scratch = b
	return string(b), ok
}

// Query returns the first query parameter named name, URL-decoded, or ""
// when there is none.
func (e *Event) Query(name string) string {
	v, _ := e.LookupQuery(name)
	return v
}

// LookupQuery is Query that also tells whether the parameter is present.
func (e *Event) LookupQuery(name string) (string, bool) {
	b, ok := read(e.scratch, func(b []byte) int32 { return hostcall.QueryGet(name, b) })
	e.scratch = b
	return string(b), ok
}
