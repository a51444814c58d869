package transforms

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one function of module hookgate_v1. The table drives both the
// host module and the load-time signature check, so they cannot disagree.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(st *callState, mod api.Module, stack []uint64)
}

var hostFuncs []hostFunc

func init() {
	p := func(ts ...api.ValueType) []api.ValueType { return ts }
	hostFuncs = []hostFunc{
		{abi.FuncBodyRead, p(i32, i32), p(i32), bodyRead},
		{abi.FuncMetaRead, p(i32, i32, i32), p(i32), metaRead},
		{abi.FuncHeaderGet, p(i32, i32, i32, i32), p(i32), headerGet},
		{abi.FuncQueryGet, p(i32, i32, i32, i32), p(i32), queryGetFn},
		{abi.FuncReceivedAt, nil, p(i64), receivedAt},
		{abi.FuncSetBody, p(i32, i32, i32), p(i32), setBody},
		{abi.FuncSetMethod, p(i32, i32, i32), p(i32), setMethod},
		{abi.FuncSetPath, p(i32, i32, i32), p(i32), setPath},
		{abi.FuncSetHeader, p(i32, i32, i32, i32, i32), p(i32), setHeader},
		{abi.FuncSetQuery, p(i32, i32, i32, i32, i32), p(i32), setQuery},
		{abi.FuncSetDelay, p(i32, i64), p(i32), setDelay},
		{abi.FuncEmit, p(i32, i32), p(i32), emit},
		{abi.FuncDrop, p(i32, i32), nil, drop},
		{abi.FuncRespond, p(i32), p(i32), respond},
		{abi.FuncFail, p(i32, i32), nil, fail},
		{abi.FuncLog, p(i32, i32, i32), nil, logFn},
		{abi.FuncNow, nil, p(i64), now},
		{abi.FuncKVGet, p(i32, i32, i32, i32), p(i32), kvGet},
		{abi.FuncKVSet, p(i32, i32, i32, i32, i64), p(i32), kvSet},
		{abi.FuncKVIncr, p(i32, i32, i64, i64), p(i64), kvIncr},
		{abi.FuncKVDelete, p(i32, i32), p(i32), kvDelete},
		{abi.FuncJSONGet, p(i32, i32, i32, i32, i32, i32), p(i32), jsonGet},
	}
}

func findHostFunc(name string) *hostFunc {
	for i := range hostFuncs {
		if hostFuncs[i].name == name {
			return &hostFuncs[i]
		}
	}
	return nil
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.HostModule)
	for i := range hostFuncs {
		f := hostFuncs[i].fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				st, ok := ctx.Value(stateKey{}).(*callState)
				if !ok {
					// Only instances built by newInstance import this
					// module, and they always call with their own context.
					panic("transforms: host function called without an instance context")
				}
				f(st, mod, stack)
			}), hostFuncs[i].params, hostFuncs[i].results).
			Export(hostFuncs[i].name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// Stack helpers: i32 arguments arrive zero-extended in a uint64.
func argU32(stack []uint64, i int) uint32 { return uint32(stack[i]) }
func argI32(stack []uint64, i int) int32  { return int32(uint32(stack[i])) }
func ret32(stack []uint64, v int32)       { stack[0] = api.EncodeI32(v) }

var contentType = []byte("Content-Type")

func bodyRead(st *callState, mod api.Module, stack []uint64) {
	ret32(stack, st.writeValue(abi.FuncBodyRead, mod, argU32(stack, 0), argU32(stack, 1), st.ev.Body))
}

func metaRead(st *callState, mod api.Module, stack []uint64) {
	ev := st.ev
	var v []byte
	switch argI32(stack, 0) {
	case abi.MetaMethod:
		v = ev.Method
	case abi.MetaPath:
		v = ev.Path
	case abi.MetaQuery:
		v = ev.Query
	case abi.MetaRoute:
		if st.chain != nil {
			v = append(st.scratch[:0], st.chain.route...)
			st.scratch = v
		}
	case abi.MetaEventID:
		v = ev.ID
	case abi.MetaConfig:
		v = emptyConfig
		if st.step != nil {
			v = st.step.config
		}
	case abi.MetaHeaders:
		v = st.scratch[:0]
		for _, h := range ev.Headers {
			v = append(v, h.Key...)
			v = append(v, ':', ' ')
			v = append(v, h.Value...)
			v = append(v, '\n')
		}
		st.scratch = v
	default:
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	ret32(stack, st.writeValue(abi.FuncMetaRead, mod, argU32(stack, 1), argU32(stack, 2), v))
}

var emptyConfig = []byte("{}")

func headerGet(st *callState, mod api.Module, stack []uint64) {
	name, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok {
		ret32(stack, st.bad(abi.FuncHeaderGet))
		return
	}
	v, ok := st.ev.Header(name)
	if !ok {
		ret32(stack, abi.ErrnoAbsent)
		return
	}
	ret32(stack, st.writeValue(abi.FuncHeaderGet, mod, argU32(stack, 2), argU32(stack, 3), v))
}

func queryGetFn(st *callState, mod api.Module, stack []uint64) {
	name, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok {
		ret32(stack, st.bad(abi.FuncQueryGet))
		return
	}
	v, ok := delivery.QueryGet(st.scratch, st.ev.Query, name)
	st.scratch = v
	if !ok {
		ret32(stack, abi.ErrnoAbsent)
		return
	}
	ret32(stack, st.writeValue(abi.FuncQueryGet, mod, argU32(stack, 2), argU32(stack, 3), v))
}

func receivedAt(st *callState, _ api.Module, stack []uint64) {
	stack[0] = uint64(st.ev.ReceivedAt)
}

func now(_ *callState, _ api.Module, stack []uint64) {
	stack[0] = uint64(time.Now().UnixNano())
}

// setBytes is set_body, set_method and set_path: read (ptr, len), count it,
// hand it to set with the target chosen by handle.
func setBytes(fn string, st *callState, mod api.Module, stack []uint64, allowResponse bool, valid func([]byte) bool,
	set func(ev *delivery.Event, d *delivery.Delivery, r *delivery.Response, v []byte)) {
	h := argI32(stack, 0)
	v, ok := read(mod, argU32(stack, 1), argU32(stack, 2))
	if !ok {
		ret32(stack, st.bad(fn))
		return
	}
	if valid != nil && !valid(v) {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	var d *delivery.Delivery
	switch {
	case h == abi.HandleEvent:
	case h == abi.HandleResponse && allowResponse:
	default:
		if d = st.delivery(h); d == nil {
			ret32(stack, abi.ErrnoBadHandle)
			return
		}
	}
	if !st.spend(len(v)) {
		ret32(stack, abi.ErrnoOutputLimit)
		return
	}
	switch {
	case h == abi.HandleEvent:
		set(st.ev, nil, nil, v)
	case h == abi.HandleResponse:
		set(nil, nil, &st.out.Response, v)
	default:
		set(nil, d, nil, v)
	}
	ret32(stack, 0)
}

func setBody(st *callState, mod api.Module, stack []uint64) {
	setBytes(abi.FuncSetBody, st, mod, stack, true, nil, func(ev *delivery.Event, d *delivery.Delivery, r *delivery.Response, v []byte) {
		switch {
		case ev != nil:
			ev.Body = append(ev.Body[:0], v...)
		case r != nil:
			r.Body = append(r.Body[:0], v...)
		default:
			d.Body = append(d.Body[:0], v...)
		}
	})
}

func setMethod(st *callState, mod api.Module, stack []uint64) {
	setBytes(abi.FuncSetMethod, st, mod, stack, false, isToken, func(ev *delivery.Event, d *delivery.Delivery, _ *delivery.Response, v []byte) {
		if ev != nil {
			ev.Method = append(ev.Method[:0], v...)
		} else {
			d.Method = append(d.Method[:0], v...)
		}
	})
}

func setPath(st *callState, mod api.Module, stack []uint64) {
	setBytes(abi.FuncSetPath, st, mod, stack, false, isPath, func(ev *delivery.Event, d *delivery.Delivery, _ *delivery.Response, v []byte) {
		if ev != nil {
			ev.Path = append(ev.Path[:0], v...)
		} else {
			d.Path = append(d.Path[:0], v...)
		}
	})
}

// readKV reads (name_ptr, name_len, val_ptr, val_len) at stack[1:5]; del is
// true for val_len == -1.
func readKV(fn string, st *callState, mod api.Module, stack []uint64) (name, val []byte, del, ok bool) {
	name, ok = read(mod, argU32(stack, 1), argU32(stack, 2))
	if !ok {
		st.bad(fn)
		return nil, nil, false, false
	}
	if len(name) == 0 {
		return nil, nil, false, false
	}
	if argI32(stack, 4) == -1 {
		return name, nil, true, true
	}
	val, ok = read(mod, argU32(stack, 3), argU32(stack, 4))
	if !ok {
		st.bad(fn)
		return nil, nil, false, false
	}
	return name, val, false, true
}

func setHeader(st *callState, mod api.Module, stack []uint64) {
	h := argI32(stack, 0)
	name, val, del, ok := readKV(abi.FuncSetHeader, st, mod, stack)
	if !ok || !isToken(name) || !isFieldValue(val) {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	var kvs *[]delivery.KV
	switch h {
	case abi.HandleEvent:
		kvs = &st.ev.Headers
	case abi.HandleResponse:
		kvs = &st.out.Response.Headers
	default:
		d := st.delivery(h)
		if d == nil {
			ret32(stack, abi.ErrnoBadHandle)
			return
		}
		kvs = &d.Headers
	}
	if !st.spend(len(name) + len(val)) {
		ret32(stack, abi.ErrnoOutputLimit)
		return
	}
	if del {
		*kvs = delivery.Del(*kvs, name)
	} else {
		*kvs = delivery.Set(*kvs, name, val)
	}
	ret32(stack, 0)
}

func setQuery(st *callState, mod api.Module, stack []uint64) {
	h := argI32(stack, 0)
	name, val, del, ok := readKV(abi.FuncSetQuery, st, mod, stack)
	if !ok {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	var d *delivery.Delivery
	if h != abi.HandleEvent {
		if d = st.delivery(h); d == nil {
			ret32(stack, abi.ErrnoBadHandle)
			return
		}
	}
	if !st.spend(len(name) + len(val)) {
		ret32(stack, abi.ErrnoOutputLimit)
		return
	}
	switch {
	case d == nil:
		// Rebuild the raw query in scratch, then copy it back into the
		// event's own buffer.
		var q []byte
		q, st.scratch2 = delivery.QuerySet(st.scratch, st.scratch2, st.ev.Query, name, val, del)
		st.ev.Query = append(st.ev.Query[:0], q...)
		st.scratch = q
	case del:
		d.Query = delivery.Del(d.Query, name)
	default:
		d.Query = delivery.Set(d.Query, name, val)
	}
	ret32(stack, 0)
}

func setDelay(st *callState, _ api.Module, stack []uint64) {
	h := argI32(stack, 0)
	ms := int64(stack[1])
	if ms < 0 {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	if h == abi.HandleEvent {
		st.eventDelay = ms
		ret32(stack, 0)
		return
	}
	d := st.delivery(h)
	if d == nil {
		ret32(stack, abi.ErrnoBadHandle)
		return
	}
	d.NotBefore = notBefore(st.ev, ms)
	ret32(stack, 0)
}

func notBefore(ev *delivery.Event, ms int64) int64 {
	base := ev.ReceivedAt
	if base == 0 {
		base = time.Now().UnixNano()
	}
	return base + ms*int64(time.Millisecond)
}

func emit(st *callState, mod api.Module, stack []uint64) {
	name, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok {
		ret32(stack, st.bad(abi.FuncEmit))
		return
	}
	if st.chain == nil {
		ret32(stack, abi.ErrnoUnknownTarget)
		return
	}
	target := ""
	for _, t := range st.chain.targets {
		if string(name) == t {
			target = t
			break
		}
	}
	if target == "" {
		ret32(stack, abi.ErrnoUnknownTarget)
		return
	}
	if !st.spend(64 + len(st.ev.Body)) {
		ret32(stack, abi.ErrnoOutputLimit)
		return
	}
	addDelivery(st.out, st.ev, st.chain.route, target)
	st.emits++
	st.out.Emitted = true
	ret32(stack, int32(st.emits))
}

// addDelivery starts an emitted delivery: the event's body and
// Content-Type; method and path from the target. (The default deliveries,
// made when nobody emits, follow delivery.Defaults instead.)
func addDelivery(out *delivery.Outcome, ev *delivery.Event, route, target string) *delivery.Delivery {
	d := out.Add()
	d.Route = route
	d.Target = target
	d.EventID = append(d.EventID[:0], ev.ID...)
	d.Body = append(d.Body[:0], ev.Body...)
	if ct, ok := ev.Header(contentType); ok {
		d.Headers = delivery.Set(d.Headers, contentType, ct)
	}
	return d
}

func drop(st *callState, mod api.Module, stack []uint64) {
	reason, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok {
		st.bad(abi.FuncDrop)
		return
	}
	if !st.spend(len(reason)) {
		return
	}
	st.dropped = true
	st.out.DropReason = append(st.out.DropReason[:0], reason...)
}

func respond(st *callState, _ api.Module, stack []uint64) {
	status := argI32(stack, 0)
	if status < 100 || status > 599 {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	st.out.Response.Set = true
	st.out.Response.Status = int(status)
	ret32(stack, 0)
}

func fail(st *callState, mod api.Module, stack []uint64) {
	msg, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok {
		st.bad(abi.FuncFail)
		return
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	st.failMsg = append(st.failMsg[:0], msg...)
}

func logFn(st *callState, mod api.Module, stack []uint64) {
	msg, ok := read(mod, argU32(stack, 1), argU32(stack, 2))
	if !ok {
		st.bad(abi.FuncLog)
		return
	}
	if !st.spend(len(msg)) {
		return
	}
	level := slog.LevelInfo
	switch argI32(stack, 0) {
	case abi.LogDebug:
		level = slog.LevelDebug
	case abi.LogWarn:
		level = slog.LevelWarn
	case abi.LogError:
		level = slog.LevelError
	}
	route := ""
	if st.chain != nil {
		route = st.chain.route
	}
	st.plugin.log(level, route, st.ev.ID, "guest", msg)
}

// readKey reads the key (ptr, len) at stack[0:2].
func readKey(fn string, st *callState, mod api.Module, stack []uint64) ([]byte, bool) {
	key, ok := read(mod, argU32(stack, 0), argU32(stack, 1))
	if !ok || len(key) > abi.MaxKVKey {
		st.bad(fn)
		return nil, false
	}
	return key, true
}

func kvGet(st *callState, mod api.Module, stack []uint64) {
	key, ok := readKey(abi.FuncKVGet, st, mod, stack)
	if !ok {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	v, ok := st.plugin.kv.get(st.scratch[:0], key)
	st.scratch = v
	if !ok {
		ret32(stack, abi.ErrnoAbsent)
		return
	}
	ret32(stack, st.writeValue(abi.FuncKVGet, mod, argU32(stack, 2), argU32(stack, 3), v))
}

func kvSet(st *callState, mod api.Module, stack []uint64) {
	key, ok := readKey(abi.FuncKVSet, st, mod, stack)
	if !ok {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	val, ok := read(mod, argU32(stack, 2), argU32(stack, 3))
	if !ok || len(val) > abi.MaxKVValue {
		ret32(stack, st.bad(abi.FuncKVSet))
		return
	}
	st.plugin.kv.set(key, val, time.Duration(int64(stack[4]))*time.Millisecond)
	ret32(stack, 0)
}

func kvIncr(st *callState, mod api.Module, stack []uint64) {
	key, ok := readKey(abi.FuncKVIncr, st, mod, stack)
	if !ok {
		stack[0] = 0
		return
	}
	stack[0] = uint64(st.plugin.kv.incr(key, int64(stack[2]), time.Duration(int64(stack[3]))*time.Millisecond))
}

func kvDelete(st *callState, mod api.Module, stack []uint64) {
	key, ok := readKey(abi.FuncKVDelete, st, mod, stack)
	if !ok {
		ret32(stack, abi.ErrnoBadArgument)
		return
	}
	st.plugin.kv.delete(key)
	ret32(stack, 0)
}
