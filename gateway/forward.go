package gateway

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/target"
)

// client finds the client of a target named by a plugin's emit.
func (t *table) client(name string) *target.Client {
	if t.deps.Targets == nil {
		return nil
	}
	return t.deps.Targets.Get(name)
}

// enqueue hands an async route's deliveries to the durable queue; the 202
// promises they are stored.
func (g *Gateway) enqueue(ctx *fasthttp.RequestCtx, st *reqState, t *table, ds []delivery.Delivery) {
	if len(ds) > 0 {
		if err := t.deps.Queue.Enqueue(ds); err != nil {
			g.refuseQueue(ctx, st, err)
			return
		}
		st.answer.Deliveries = ds
	}
	st.accepted = true
	b := append(st.buf[:0], `{"event_id":"`...)
	b = append(b, st.ev.ID...)
	b = append(b, `"}`...)
	st.buf = b
	writeJSON(ctx, fasthttp.StatusAccepted, b)
}

// forward sends a sync route's deliveries now, all at once, and answers
// with the first delivery's target answer (or the plugin's response).
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, st *reqState, t *table, rt *route, ds []delivery.Delivery) {
	n := len(ds)
	if n == 0 && !st.out.Response.Set {
		b := append(st.buf[:0], `{"event_id":"`...)
		b = append(b, st.ev.ID...)
		b = append(b, `","deliveries":0}`...)
		st.buf = b
		st.accepted = true
		writeJSON(ctx, fasthttp.StatusOK, b)
		return
	}
	st.grow(n)
	for i := range ds {
		if !st.out.Emitted && i < len(rt.targets) {
			st.clients[i] = rt.targets[i]
		} else {
			st.clients[i] = t.client(ds[i].Target)
		}
		st.errs[i] = nil
	}
	if off := t.deps.Disabled; off != nil {
		// A disabled target gets nothing, from a sync route either. The
		// first delivery's answer is the sender's: without it there is
		// nothing to answer with, so nothing is sent at all (the sender's
		// retry would send the others twice). Another delivery to a
		// disabled target is left out, as a failed one would be.
		for i := range ds {
			if !off.Disabled(ds[i].Target) {
				continue
			}
			if i == 0 && !st.out.Response.Set {
				g.refuseDisabled(ctx, st, &ds[0])
				return
			}
			st.clients[i], st.errs[i], st.took[i] = nil, errTargetDisabled, 0
			st.res[i].Reset()
		}
	}
	for i := 1; i < n; i++ {
		if st.clients[i] == nil {
			continue // disabled: not sent
		}
		j := &st.jobs[i]
		j.c, j.d, j.r, j.err, j.took, j.wg = st.clients[i], &ds[i], &st.res[i], &st.errs[i], &st.took[i], &st.wg
		st.wg.Add(1)
		select {
		case g.fanout <- j:
		default:
			go j.run()
		}
	}
	st.sent = time.Now()
	if n > 0 && st.clients[0] != nil {
		st.errs[0] = st.clients[0].Do(&ds[0], &st.res[0])
		st.took[0] = time.Since(st.sent)
	}
	st.wg.Wait()
	g.recordAttempts(st, t, ds)

	if st.out.Response.Set {
		resp := &st.out.Response
		status := resp.Status
		if status == 0 {
			status = fasthttp.StatusOK
		}
		ctx.SetStatusCode(status)
		st.accepted = status < 300
		for _, h := range resp.Headers {
			ctx.Response.Header.SetBytesKV(h.Key, h.Value)
		}
		setAnswerBody(ctx, resp.Body)
		return
	}
	if err := st.errs[0]; err != nil {
		g.refuseTarget(ctx, st, rt, &ds[0], err)
		return
	}
	r := &st.res[0]
	// A sync event counts as accepted when the target took it: after a
	// failure the sender's retry must reach the target again.
	st.accepted = r.Status >= 200 && r.Status < 300
	ctx.SetStatusCode(r.Status)
	if len(r.ContentType) > 0 {
		ctx.Response.Header.SetContentTypeBytes(r.ContentType)
	}
	if len(r.RetryAfter) > 0 {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderRetryAfter, r.RetryAfter)
	}
	setAnswerBody(ctx, r.Body)
}

// errTargetDisabled marks a sync delivery not sent because its target
// is disabled.
var errTargetDisabled = errors.New("target disabled")

// keepBodyMax is the largest body whose buffer a keep-alive connection
// keeps for its next request (see ReduceMemoryUsage in New). Webhooks are
// mostly far smaller; a larger one costs an allocation, not idle memory.
const keepBodyMax = 16 << 10

// setAnswerBody sets the answer's body. One over keepBodyMax is sent from
// a copy of its own, freed once written, rather than copied into the
// connection's body buffer, which would keep that size while the
// connection idles. A large answer is rare: allocating is fine.
func setAnswerBody(ctx *fasthttp.RequestCtx, b []byte) {
	if len(b) > keepBodyMax {
		ctx.Response.SetBodyRaw(bytes.Clone(b))
		return
	}
	ctx.SetBody(b)
}

// dropLargeBody lets go of a request body buffer over keepBodyMax, so an
// idle keep-alive connection does not keep it outside the body memory
// budget. Call it once nothing refers to the body any more.
func dropLargeBody(ctx *fasthttp.RequestCtx) {
	if cap(ctx.Request.Body()) > keepBodyMax {
		ctx.Request.SwapBody(nil)
	}
}

// recordAttempts tells each delivery's target recorder of its one
// attempt (all sent at st.sent), and keeps them for the answer.
func (g *Gateway) recordAttempts(st *reqState, t *table, ds []delivery.Delivery) {
	as := st.attempts[:0]
	for i := range ds {
		a := delivery.Attempt{At: st.sent, Status: st.res[i].Status, Duration: st.took[i], Outcome: delivery.AttemptSuccess}
		if err := st.errs[i]; err != nil {
			a.Status, a.Outcome = 0, delivery.AttemptError
			if err == errTargetDisabled {
				a.Error = "not sent: the target is disabled (disable_after); enable it with POST /admin/targets/" + ds[i].Target + "/enable"
			} else if errors.Is(err, target.ErrToken) {
				a.Error = err.Error() // what the token endpoint said, for the operator
				a.NoToken = true
			} else {
				a.Error = string(appendTransportCause(st.msg[:0], err)) // a failure: allocating is fine
			}
		} else if a.Status < 200 || a.Status > 299 {
			a.Outcome = delivery.AttemptError
		}
		as = append(as, a)
	}
	for i := range ds {
		if tr := t.targets[ds[i].Target]; tr != nil {
			tr.Attempted(&ds[i], 1, &as[i])
		}
	}
	st.attempts = as
	st.answer.Deliveries, st.answer.Attempts = ds, as
}

func (st *reqState) grow(n int) {
	for len(st.res) < n {
		st.res = append(st.res, target.Result{})
	}
	for len(st.errs) < n {
		st.errs = append(st.errs, nil)
	}
	for len(st.clients) < n {
		st.clients = append(st.clients, nil)
	}
	for len(st.jobs) < n {
		st.jobs = append(st.jobs, fanJob{})
	}
	for len(st.took) < n {
		st.took = append(st.took, 0)
	}
}

// fanJob is one delivery of a sync fan-out sent by a fan-out worker.
type fanJob struct {
	c    *target.Client
	d    *delivery.Delivery
	r    *target.Result
	err  *error
	took *time.Duration
	wg   *sync.WaitGroup
}

func (j *fanJob) run() {
	start := time.Now()
	*j.err = j.c.Do(j.d, j.r)
	*j.took = time.Since(start)
	j.wg.Done()
}

func (g *Gateway) fanoutWorker() {
	for {
		select {
		case j := <-g.fanout:
			j.run()
		case <-g.ctx.Done():
			return
		}
	}
}
