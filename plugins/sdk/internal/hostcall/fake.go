//go:build !wasip1

package hostcall

import (
	"encoding/binary"
	"math"
	"net/url"
	"strings"
	"sync"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/jsonget"
)

// This file is the in-process fake host used when the SDK is not built for
// wasip1. It implements ABI.md v1 rule by rule (buffer-limit-and-retry,
// handles, error codes, output accounting) so that a plugin passing its
// sdktest tests behaves the same in the real host. sdktest owns the only
// Fake in use; it is not safe for concurrent calls.

// KV is one header or query parameter.
type KV struct{ Key, Value string }

// Store is the key-value service behind kv_get/kv_set/kv_incr/kv_delete.
// Times are unix nanoseconds of the fake clock; TTLs are milliseconds.
type Store interface {
	Get(key string, now int64) ([]byte, bool)
	Set(key string, val []byte, ttlMillis, now int64)
	Incr(key string, delta, ttlMillis, now int64) int64
	Delete(key string, now int64)
}

// LogLine is one call of log.
type LogLine struct {
	Level int32
	Msg   string
}

// Delivery is one emitted delivery as the fake host recorded it.
type Delivery struct {
	Target  string
	Method  string // "" means the target's method
	Path    string // "" means the target URL's path
	Headers []KV
	Query   []KV
	Body    []byte
	Delay   int64 // milliseconds, set_delay on this handle
}

// Fake is the state of one call: its input (set before Call) and the
// outcome the guest produced (read after).
type Fake struct {
	// Input.
	Method     string
	Path       string
	RawQuery   string
	Route      string
	EventID    string
	Headers    []KV // the event's headers; changed in place by handle 0
	Body       []byte
	Config     []byte
	ReceivedAt int64    // unix nanoseconds
	Clock      int64    // what now returns, unix nanoseconds
	Targets    []string // known targets; nil accepts any non-empty name
	MaxOutput  int64    // bytes; 0 means unlimited
	Store      Store

	// NoCopy keeps views of guest memory instead of copies: only for
	// benchmarks, which discard the outcome, so that their allocation
	// figures are the guest's. A real host always copies.
	NoCopy bool

	// Outcome.
	Query          []KV // the event's query, parsed from RawQuery by Call
	queryChanged   bool
	Delay          int64 // milliseconds, set_delay on handle 0
	Dropped        bool
	DropReason     string
	FailMsg        string
	Failed         bool   // fail was called
	OutputExceeded bool   // max_output was hit: the host fails the call
	BadFunc        string // first function given a bad argument: the host fails the call
	Emitted        []Delivery
	Responded      bool
	RespStatus     int32
	RespHeaders    []KV
	RespBody       []byte
	Logs           []LogLine
	output         int64

	json *jsonget.Scratch // json_get's working memory during calls
}

// ResetOutcome clears the outcome for another call, keeping capacity.
func (f *Fake) ResetOutcome() {
	f.queryChanged = false
	f.Delay = 0
	f.Dropped, f.DropReason = false, ""
	f.Failed, f.FailMsg = false, ""
	f.OutputExceeded, f.BadFunc = false, ""
	f.Emitted = f.Emitted[:0]
	f.Responded, f.RespStatus = false, 0
	f.RespHeaders, f.RespBody = f.RespHeaders[:0], f.RespBody[:0]
	f.Logs = f.Logs[:0]
	f.output = 0
}

// Current is the fake host the abi functions talk to during Call.
var Current *Fake

// Export is the guest's hookgate_handle, registered by the SDK.
var Export func(bodyLen, configID int32) int32

// Call runs the guest's hookgate_handle against f, as the host would.
func (f *Fake) Call(configID int32) int32 {
	f.Query = parseQuery(f.Query[:0], f.RawQuery) // reused: sdktest.Allocs counts the plugin's allocations, not the fake's
	Current = f
	defer func() { Current = nil }()
	if Export == nil {
		panic("hostcall: no hookgate_handle registered (import plugins/sdk)")
	}
	return Export(int32(len(f.Body)), configID)
}

func cur() *Fake {
	if Current == nil {
		panic("hostcall: host function called outside a call (use sdktest.Run)")
	}
	return Current
}

// put applies buffer-limit-and-retry: write v when it fits, and always
// return its full length.
func put(buf []byte, v []byte) int32 {
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return int32(len(v))
}

func putString(buf []byte, v string) int32 {
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return int32(len(v))
}

// keep copies a guest string: the guest reuses its buffers.
func (f *Fake) keep(s string) string {
	if f.NoCopy {
		return s
	}
	return strings.Clone(s)
}

func (f *Fake) keepBytes(dst, b []byte) []byte {
	if f.NoCopy {
		return b
	}
	return append(dst[:0:0], b...)
}

// bad records a bad argument, which fails the call, as the host does.
func (f *Fake) bad(fn string) int32 {
	if f.BadFunc == "" {
		f.BadFunc = fn
	}
	return abi.ErrnoBadArgument
}

// spend counts bytes toward max_output.
func (f *Fake) spend(n int) bool {
	f.output += int64(n)
	if f.MaxOutput > 0 && f.output > f.MaxOutput {
		f.OutputExceeded = true
		return false
	}
	return true
}

func BodyRead(buf []byte) int32 { return put(buf, cur().Body) }

func MetaRead(key int32, buf []byte) int32 {
	f := cur()
	switch key {
	case abi.MetaMethod:
		return putString(buf, f.Method)
	case abi.MetaPath:
		return putString(buf, f.Path)
	case abi.MetaQuery:
		if f.queryChanged {
			return putString(buf, encodeQuery(f.Query))
		}
		return putString(buf, f.RawQuery)
	case abi.MetaRoute:
		return putString(buf, f.Route)
	case abi.MetaEventID:
		return putString(buf, f.EventID)
	case abi.MetaConfig:
		if len(f.Config) == 0 {
			return putString(buf, "{}")
		}
		return put(buf, f.Config)
	case abi.MetaHeaders:
		var b strings.Builder
		for _, h := range f.Headers {
			b.WriteString(h.Key)
			b.WriteString(": ")
			b.WriteString(h.Value)
			b.WriteByte('\n')
		}
		return putString(buf, b.String())
	}
	return abi.ErrnoBadArgument
}

func HeaderGet(name string, buf []byte) int32 {
	if i := find(cur().Headers, name, true); i >= 0 {
		return putString(buf, cur().Headers[i].Value)
	}
	return abi.ErrnoAbsent
}

func QueryGet(name string, buf []byte) int32 {
	if i := find(cur().Query, name, false); i >= 0 {
		return putString(buf, cur().Query[i].Value)
	}
	return abi.ErrnoAbsent
}

func ReceivedAt() int64 { return cur().ReceivedAt }
func Now() int64        { return cur().Clock }

// delivery returns the emitted delivery behind handle h (>= 1).
func (f *Fake) delivery(h int32) *Delivery {
	if h < 1 || int(h) > len(f.Emitted) {
		return nil
	}
	return &f.Emitted[h-1]
}

func SetBody(h int32, b []byte) int32 {
	f := cur()
	var d *Delivery
	if h != abi.HandleEvent && h != abi.HandleResponse {
		if d = f.delivery(h); d == nil {
			return abi.ErrnoBadHandle
		}
	}
	if !f.spend(len(b)) {
		return abi.ErrnoOutputLimit
	}
	switch {
	case h == abi.HandleEvent:
		f.Body = f.keepBytes(f.Body, b)
	case h == abi.HandleResponse:
		f.RespBody = f.keepBytes(f.RespBody, b)
	default:
		d.Body = f.keepBytes(d.Body, b)
	}
	return 0
}

func SetMethod(h int32, s string) int32 { return setField(h, s, true) }
func SetPath(h int32, s string) int32   { return setField(h, s, false) }

// setField is set_method and set_path; a response has neither.
func setField(h int32, s string, method bool) int32 {
	f := cur()
	var d *Delivery
	if h != abi.HandleEvent {
		if d = f.delivery(h); d == nil {
			return abi.ErrnoBadHandle
		}
	}
	if !f.spend(len(s)) {
		return abi.ErrnoOutputLimit
	}
	switch {
	case d == nil && method:
		f.Method = f.keep(s)
	case d == nil:
		f.Path = f.keep(s)
	case method:
		d.Method = f.keep(s)
	default:
		d.Path = f.keep(s)
	}
	return 0
}

func SetHeader(h int32, name, val string) int32 { return setKV(h, name, val, false, true) }
func DelHeader(h int32, name string) int32      { return setKV(h, name, "", true, true) }
func SetQuery(h int32, name, val string) int32  { return setKV(h, name, val, false, false) }
func DelQuery(h int32, name string) int32       { return setKV(h, name, "", true, false) }

func setKV(h int32, name, val string, del, header bool) int32 {
	f := cur()
	fn := abi.FuncSetQuery
	if header {
		fn = abi.FuncSetHeader
	}
	if name == "" {
		return f.bad(fn)
	}
	var list *[]KV
	switch {
	case h == abi.HandleEvent && header:
		list = &f.Headers
	case h == abi.HandleEvent:
		list = &f.Query
	case h == abi.HandleResponse && header:
		list = &f.RespHeaders
	default:
		d := f.delivery(h)
		if d == nil {
			return abi.ErrnoBadHandle
		}
		list = &d.Query
		if header {
			list = &d.Headers
		}
	}
	if !f.spend(len(name) + len(val)) {
		return abi.ErrnoOutputLimit
	}
	if h == abi.HandleEvent && !header {
		f.queryChanged = true
	}
	*list = setList(*list, f.keep(name), f.keep(val), del, header)
	return 0
}

// setList replaces every entry named name by one (or removes them all when
// del), keeping the position of the first.
func setList(l []KV, name, val string, del, fold bool) []KV {
	out := l[:0]
	placed := false
	for _, kv := range l {
		if !same(kv.Key, name, fold) {
			out = append(out, kv)
			continue
		}
		if !del && !placed {
			out = append(out, KV{kv.Key, val})
			placed = true
		}
	}
	if !del && !placed {
		out = append(out, KV{name, val})
	}
	return out
}

func SetDelay(h int32, millis int64) int32 {
	f := cur()
	if millis < 0 {
		return abi.ErrnoBadArgument
	}
	switch {
	case h == abi.HandleEvent:
		f.Delay = millis
	default:
		d := f.delivery(h)
		if d == nil {
			return abi.ErrnoBadHandle
		}
		d.Delay = millis
	}
	return 0
}

func Emit(target string) int32 {
	f := cur()
	if !f.known(target) {
		return abi.ErrnoUnknownTarget
	}
	if !f.spend(64 + len(f.Body)) { // the host's estimate of a delivery's size
		return abi.ErrnoOutputLimit
	}
	n := len(f.Emitted)
	if n < cap(f.Emitted) {
		f.Emitted = f.Emitted[:n+1]
	} else {
		f.Emitted = append(f.Emitted, Delivery{})
	}
	d := &f.Emitted[n]
	*d = Delivery{Target: f.keep(target), Headers: d.Headers[:0], Query: d.Query[:0], Body: f.keepBytes(d.Body, f.Body)}
	if i := find(f.Headers, "Content-Type", true); i >= 0 {
		d.Headers = append(d.Headers, KV{"Content-Type", f.Headers[i].Value})
	}
	return int32(n + 1)
}

func (f *Fake) known(target string) bool {
	if target == "" {
		return false
	}
	if f.Targets == nil {
		return true
	}
	for _, t := range f.Targets {
		if t == target {
			return true
		}
	}
	return false
}

func Drop(reason string) {
	f := cur()
	if !f.spend(len(reason)) {
		return
	}
	f.Dropped = true
	f.DropReason = f.keep(reason)
}

func Respond(status int32) int32 {
	f := cur()
	if status < 100 || status > 599 {
		return abi.ErrnoBadArgument
	}
	f.Responded = true
	f.RespStatus = status
	return 0
}

func Fail(msg string) {
	f := cur()
	if len(msg) > 1024 { // the host keeps the first 1 KiB
		msg = msg[:1024]
	}
	f.Failed = true
	f.FailMsg = strings.Clone(msg)
}

func Log(level int32, msg string) {
	f := cur()
	if !f.spend(len(msg)) {
		return
	}
	f.Logs = append(f.Logs, LogLine{level, f.keep(msg)})
}

func KVGet(key string, buf []byte) int32 {
	f := cur()
	if len(key) > abi.MaxKVKey {
		return f.bad(abi.FuncKVGet)
	}
	v, ok := f.Store.Get(key, f.Clock)
	if !ok {
		return abi.ErrnoAbsent
	}
	return put(buf, v)
}

func KVSet(key string, val []byte, ttlMillis int64) int32 {
	f := cur()
	if len(key) > abi.MaxKVKey || len(val) > abi.MaxKVValue {
		return f.bad(abi.FuncKVSet)
	}
	f.Store.Set(strings.Clone(key), append([]byte(nil), val...), ttlMillis, f.Clock)
	return 0
}

func KVIncr(key string, delta, ttlMillis int64) int64 {
	f := cur()
	if len(key) > abi.MaxKVKey {
		f.bad(abi.FuncKVIncr)
		return 0
	}
	return f.Store.Incr(strings.Clone(key), delta, ttlMillis, f.Clock)
}

func KVDelete(key string) int32 {
	f := cur()
	if len(key) > abi.MaxKVKey {
		return f.bad(abi.FuncKVDelete)
	}
	f.Store.Delete(key, f.Clock)
	return 0
}

// jsonScratch holds the evaluator's working memory outside a call. json_get
// needs no event, so unlike the other functions it works outside a call
// too (a plugin may look up JSON in init, or a test call a parser
// directly), and parallel tests may call it at once. During a call the
// Fake's own scratch is used: a sync.Pool drops items at random under the
// race detector, which allocation tests would count.
var jsonScratch = sync.Pool{New: func() any { return new(jsonget.Scratch) }}

// JSONGet is json_get, answered by the same evaluator as the real host's.
func JSONGet(json, paths []byte, out []Record) int32 {
	var s *jsonget.Scratch
	if f := Current; f != nil {
		if f.json == nil {
			f.json = new(jsonget.Scratch)
		}
		s = f.json
	} else {
		s = jsonScratch.Get().(*jsonget.Scratch)
		defer jsonScratch.Put(s)
	}
	recs, ok := s.Eval(json, paths)
	if !ok {
		return abi.ErrnoBadArgument
	}
	if len(recs) > len(out)*jsonget.RecordSize {
		return int32(len(recs)) // buffer-limit-and-retry: nothing written
	}
	for i := range len(recs) / jsonget.RecordSize {
		b := recs[i*jsonget.RecordSize:]
		u := func(off int) int32 { return int32(binary.LittleEndian.Uint32(b[off:])) }
		out[i] = Record{
			Type: u(jsonget.OffType), Flags: u(jsonget.OffFlags),
			Num:   math.Float64frombits(binary.LittleEndian.Uint64(b[jsonget.OffNum:])),
			Start: u(jsonget.OffStart), Len: u(jsonget.OffLen),
			KeyStart: u(jsonget.OffKeyStart), KeyLen: u(jsonget.OffKeyLen), Stride: u(jsonget.OffStride),
		}
	}
	return int32(len(recs))
}

func same(a, b string, fold bool) bool {
	if fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func find(l []KV, name string, fold bool) int {
	for i, kv := range l {
		if same(kv.Key, name, fold) {
			return i
		}
	}
	return -1
}

// parseQuery appends to out the URL-decoded pairs of a raw query string,
// in order.
func parseQuery(out []KV, raw string) []KV {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		out = append(out, KV{k, v})
	}
	return out
}

func encodeQuery(l []KV) string {
	var b strings.Builder
	for i, kv := range l {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv.Key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv.Value))
	}
	return b.String()
}
