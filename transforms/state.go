package transforms

import (
	"context"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/jsonget"
	"github.com/tetratelabs/wazero/api"
)

// stateKey finds an instance's callState in the context host functions
// receive. The context is built once per instance (see newInstance), so a
// call does not allocate one.
type stateKey struct{}

// stateOf returns the callState of the instance whose context ctx is. Only
// instances built by newInstance import hookgate's host modules, and they
// always call with their own context.
func stateOf(ctx context.Context) *callState {
	st, ok := ctx.Value(stateKey{}).(*callState)
	if !ok {
		panic("transforms: host function called without an instance context")
	}
	return st
}

// callState is what the host functions of one instance work on during a
// call. It lives inside the instance and is reset, not reallocated, per call.
type callState struct {
	plugin *plugin

	// deadline ends the running call or instantiation (monoNow units):
	// yield aborts the guest past it and sets timedOut. yields counts the
	// budgets handed out, for tests and the stats.
	deadline int64
	timedOut bool
	yields   uint64

	chain *Chain // nil outside a call
	step  *step
	ev    *delivery.Event
	out   *delivery.Outcome

	firstEmit int // index in out.Deliveries of this call's handle 1
	emits     int // deliveries emitted by this call

	output     int64 // bytes produced so far, against plugin.spec.MaxOutput
	overOutput bool
	badFunc    string // first host function given a bad pointer or length
	dropped    bool
	failMsg    []byte
	eventDelay int64 // set_delay(0, ...) in milliseconds; -1 when unset

	scratch  []byte // reused by host functions that build a value
	scratch2 []byte

	// json is json_get's working memory (its compiled path list and the
	// records being built), the instance's own: a guest asking the same
	// paths call after call skips compiling them, and nothing is
	// allocated once it has grown.
	json jsonget.Scratch

	// idle stands in for the event and outcome outside a call (a Go guest's
	// init may call host functions); what it writes is thrown away.
	idleEv  delivery.Event
	idleOut delivery.Outcome
}

func (st *callState) begin(c *Chain, s *step, ev *delivery.Event, out *delivery.Outcome, eventDelay int64) {
	st.chain, st.step, st.ev, st.out = c, s, ev, out
	st.timedOut = false
	st.firstEmit = len(out.Deliveries)
	st.emits = 0
	st.output = 0
	st.overOutput = false
	st.badFunc = ""
	st.dropped = false
	st.failMsg = st.failMsg[:0]
	st.eventDelay = eventDelay
}

// end drops the references to the caller's event and outcome, so the
// instance keeps nothing of a request once it is back in the pool.
func (st *callState) end() {
	st.chain, st.step = nil, nil
	st.idleEv.Reset()
	st.idleOut.Reset()
	st.ev, st.out = &st.idleEv, &st.idleOut
}

// bad records a bad pointer or length passed to fn and returns
// ErrnoBadArgument for the guest.
func (st *callState) bad(fn string) int32 {
	if st.badFunc == "" {
		st.badFunc = fn
	}
	return abi.ErrnoBadArgument
}

// spend counts n output bytes; false means max_output is exceeded and the
// call will fail.
func (st *callState) spend(n int) bool {
	st.output += int64(n)
	if st.output > st.plugin.spec.MaxOutput {
		st.overOutput = true
		return false
	}
	return true
}

// delivery returns emitted delivery h (1-based), or nil.
func (st *callState) delivery(h int32) *delivery.Delivery {
	if h < 1 || int(h) > st.emits {
		return nil
	}
	return &st.out.Deliveries[st.firstEmit+int(h)-1]
}

// read returns the guest bytes at ptr..ptr+n as a view into guest memory,
// valid only until the host function returns: callers copy what they keep.
func read(mod api.Module, ptr, n uint32) ([]byte, bool) {
	return mod.Memory().Read(ptr, n)
}

// writeValue implements buffer-limit-and-retry: it writes val at ptr when it
// fits in limit and returns len(val).
func (st *callState) writeValue(fn string, mod api.Module, ptr, limit uint32, val []byte) int32 {
	if uint64(len(val)) > uint64(limit) || len(val) == 0 {
		return int32(len(val))
	}
	if !mod.Memory().Write(ptr, val) {
		return st.bad(fn)
	}
	return int32(len(val))
}
