package sdk

import (
	"errors"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
)

// Errors a host function can report (ABI.md, "Errors"). A HostError wraps
// one of them; test with errors.Is.
var (
	ErrBadHandle     = errors.New("no such delivery handle")
	ErrOutputLimit   = errors.New("the plugin's max_output would be exceeded")
	ErrUnknownTarget = errors.New("unknown target")
	ErrBadArgument   = errors.New("bad argument")
)

// HostError is a host function that refused a call.
type HostError struct {
	Func string // the ABI function, e.g. "emit"
	Arg  string // what it was called with, e.g. the target name
	Err  error  // one of the ErrX sentinels
}

func (e *HostError) Error() string {
	if e.Arg != "" {
		return fmt.Sprintf("sdk: %s(%q): %v", e.Func, e.Arg, e.Err)
	}
	return fmt.Sprintf("sdk: %s: %v", e.Func, e.Err)
}

func (e *HostError) Unwrap() error { return e.Err }

func codeErr(code int32) error {
	switch code {
	case abi.ErrnoBadHandle:
		return ErrBadHandle
	case abi.ErrnoOutputLimit:
		return ErrOutputLimit
	case abi.ErrnoUnknownTarget:
		return ErrUnknownTarget
	}
	return ErrBadArgument
}

// check records the first failed outcome call; the call then fails.
func (e *Event) check(rc int32, fn, arg string) {
	if rc < 0 && e.err == nil {
		e.err = &HostError{Func: fn, Arg: arg, Err: codeErr(rc)}
	}
}

// Err returns the first outcome call the host refused in this call, if any.
// The SDK fails the call with it even if the handler returns nil.
func (e *Event) Err() error { return e.err }

// SetBody replaces the event's body: what later plugins see and what goes
// to the route's targets when nobody emits. The host copies b.
func (e *Event) SetBody(b []byte) { e.check(hostcall.SetBody(abi.HandleEvent, b), "set_body", "") }

// SetMethod sets the event's method.
func (e *Event) SetMethod(m string) { e.check(hostcall.SetMethod(abi.HandleEvent, m), "set_method", m) }

// SetPath sets the event's path, which replaces the path of the target URL.
func (e *Event) SetPath(p string) { e.check(hostcall.SetPath(abi.HandleEvent, p), "set_path", p) }

// SetHeader sets a header of the event, replacing any of the same name.
func (e *Event) SetHeader(name, value string) {
	e.check(hostcall.SetHeader(abi.HandleEvent, name, value), "set_header", name)
}

// DelHeader deletes a header of the event.
func (e *Event) DelHeader(name string) {
	e.check(hostcall.DelHeader(abi.HandleEvent, name), "set_header", name)
}

// SetQuery sets a query parameter of the event (raw; the host encodes it).
func (e *Event) SetQuery(name, value string) {
	e.check(hostcall.SetQuery(abi.HandleEvent, name, value), "set_query", name)
}

// DelQuery deletes a query parameter of the event.
func (e *Event) DelQuery(name string) {
	e.check(hostcall.DelQuery(abi.HandleEvent, name), "set_query", name)
}

// Delay sets a not-before delay for every delivery of the event. It needs
// an async route.
func (e *Event) Delay(d time.Duration) {
	if rc := hostcall.SetDelay(abi.HandleEvent, d.Milliseconds()); rc < 0 {
		e.check(rc, "set_delay", d.String())
	}
}

// Drop drops the event: nothing is delivered (emitted deliveries included)
// and the chain stops after this plugin. The sender still gets its normal
// answer. It returns nil so a handler can end with `return e.Drop("...")`.
func (e *Event) Drop(reason string) error {
	hostcall.Drop(reason)
	return nil
}

// Delivery is an outgoing request created by Emit. Its methods chain:
//
//	e.Emit("crm").SetBody(ticket).SetHeader("X-Score", "3")
//
// It starts with the event's current body and Content-Type and the target's
// method and path; set what should differ.
type Delivery struct {
	e   *Event
	h   int32
	err error
}

// Emit creates a delivery to the named target (a [[target]] of the
// config). When any plugin of the chain emits, the emitted deliveries
// replace the route's default delivery of the event.
//
// # Notes
//
// An unknown target makes the call fail (after the handler returns); the
// returned Delivery then ignores its setters. The Delivery is reused by
// later calls: do not keep it past the handler.
func (e *Event) Emit(target string) *Delivery {
	if e.emitted == len(e.deliveries) {
		e.deliveries = append(e.deliveries, &Delivery{})
	}
	d := e.deliveries[e.emitted]
	e.emitted++
	*d = Delivery{e: e, h: hostcall.Emit(target)}
	d.check(d.h, "emit", target)
	return d
}

// Err returns why the delivery could not be created or changed, if it
// could not.
func (d *Delivery) Err() error { return d.err }

func (d *Delivery) check(rc int32, fn, arg string) {
	if rc < 0 && d.err == nil {
		d.err = &HostError{Func: fn, Arg: arg, Err: codeErr(rc)}
		if d.e.err == nil {
			d.e.err = d.err
		}
	}
}

// SetBody sets the delivery's body. The host copies b.
func (d *Delivery) SetBody(b []byte) *Delivery {
	if d.err == nil {
		d.check(hostcall.SetBody(d.h, b), "set_body", "")
	}
	return d
}

// SetMethod sets the delivery's method, e.g. "GET".
func (d *Delivery) SetMethod(m string) *Delivery {
	if d.err == nil {
		d.check(hostcall.SetMethod(d.h, m), "set_method", m)
	}
	return d
}

// SetPath sets the delivery's path, replacing the path of the target URL.
func (d *Delivery) SetPath(p string) *Delivery {
	if d.err == nil {
		d.check(hostcall.SetPath(d.h, p), "set_path", p)
	}
	return d
}

// SetHeader sets a header, replacing any of the same name.
func (d *Delivery) SetHeader(name, value string) *Delivery {
	if d.err == nil {
		d.check(hostcall.SetHeader(d.h, name, value), "set_header", name)
	}
	return d
}

// DelHeader deletes a header (e.g. the Content-Type copied from the event).
func (d *Delivery) DelHeader(name string) *Delivery {
	if d.err == nil {
		d.check(hostcall.DelHeader(d.h, name), "set_header", name)
	}
	return d
}

// SetQuery sets a query parameter (raw; the host encodes it). It is added
// to the target's static query, replacing one of the same name.
func (d *Delivery) SetQuery(name, value string) *Delivery {
	if d.err == nil {
		d.check(hostcall.SetQuery(d.h, name, value), "set_query", name)
	}
	return d
}

// DelQuery deletes a query parameter.
func (d *Delivery) DelQuery(name string) *Delivery {
	if d.err == nil {
		d.check(hostcall.DelQuery(d.h, name), "set_query", name)
	}
	return d
}

// Delay sets a not-before delay for this delivery alone (async routes).
func (d *Delivery) Delay(t time.Duration) *Delivery {
	if d.err == nil {
		if rc := hostcall.SetDelay(d.h, t.Milliseconds()); rc < 0 {
			d.check(rc, "set_delay", t.String())
		}
	}
	return d
}

// Response is the answer to the sender, set with Respond.
type Response struct {
	e   *Event
	err error
}

// Respond answers the sender with status (100-599). On a sync route it
// replaces the target's answer; deliveries still happen.
func (e *Event) Respond(status int) *Response {
	r := &e.resp
	if rc := hostcall.Respond(int32(status)); rc < 0 {
		r.err = &HostError{Func: "respond", Arg: fmt.Sprint(status), Err: codeErr(rc)}
		if e.err == nil {
			e.err = r.err
		}
	}
	return r
}

// SetBody sets the response body. The host copies b.
func (r *Response) SetBody(b []byte) *Response {
	if r.err == nil {
		r.e.check(hostcall.SetBody(abi.HandleResponse, b), "set_body", "")
	}
	return r
}

// SetHeader sets a response header.
func (r *Response) SetHeader(name, value string) *Response {
	if r.err == nil {
		r.e.check(hostcall.SetHeader(abi.HandleResponse, name, value), "set_header", name)
	}
	return r
}
