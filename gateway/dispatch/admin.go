package dispatch

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Admin endpoint limits.
const (
	defaultDeadLimit = 50
	maxDeadLimit     = 1000
)

// AdminHandlers returns the dispatcher's admin endpoints keyed by
// net/http.ServeMux pattern (Go 1.22 syntax, method included):
//
//	GET  /admin/dead?target=&route=&limit=&cursor=  dead letters, oldest first
//	POST /admin/dead/{id}/replay                   replay one dead letter
//	POST /admin/dead/replay?target=|route=|all=true[&limit=N]
//	                                               replay the matching ones (at most N);
//	                                               answers {"replayed": n, "remaining": m}
//	GET  /admin/queue                              depth, bytes, oldest age, dead, breaker per target
//
// Every answer is JSON; errors are {"error":{"code":"...","message":"..."}}.
func (d *Dispatcher) AdminHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /admin/dead":              http.HandlerFunc(d.handleDeadList),
		"POST /admin/dead/{id}/replay": http.HandlerFunc(d.handleReplayOne),
		"POST /admin/dead/replay":      http.HandlerFunc(d.handleReplayAll),
		"GET /admin/queue":             http.HandlerFunc(d.handleQueue),
	}
}

// Register adds the admin endpoints to mux (an *http.ServeMux, or anything
// with the same Handle).
func (d *Dispatcher) Register(mux interface{ Handle(string, http.Handler) }) {
	for pattern, h := range d.AdminHandlers() {
		mux.Handle(pattern, h)
	}
}

type deadJSON struct {
	ID         string        `json:"id"`
	EventID    string        `json:"event_id"`
	Route      string        `json:"route"`
	Target     string        `json:"target"`
	Method     string        `json:"method,omitempty"`
	Path       string        `json:"path,omitempty"`
	Query      [][2]string   `json:"query,omitempty"`
	Headers    [][2]string   `json:"headers,omitempty"`
	Body       string        `json:"body"`
	NotBefore  *time.Time    `json:"not_before,omitempty"`
	EnqueuedAt time.Time     `json:"enqueued_at"`
	DeadAt     time.Time     `json:"dead_at"`
	Attempts   []attemptJSON `json:"attempts"`
}

type attemptJSON struct {
	At       time.Time `json:"at"`
	Duration string    `json:"duration"`
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Body     string    `json:"body,omitempty"`
}

func kvPairs(kvs []delivery.KV) [][2]string {
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, [2]string{string(kv.Key), string(kv.Value)})
	}
	return out
}

func (d *Dispatcher) handleDeadList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultDeadLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDeadLimit {
			writeError(w, http.StatusBadRequest, "bad_limit", "limit must be a whole number from 1 to "+strconv.Itoa(maxDeadLimit))
			return
		}
		limit = n
	}
	f := queue.Filter{Target: q.Get("target"), Route: q.Get("route")}
	dls, next, err := d.store.DeadList(f, q.Get("cursor"), limit)
	if err != nil {
		if errors.Is(err, queue.ErrBadCursor) {
			writeError(w, http.StatusBadRequest, "bad_cursor", err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "queue_error", err.Error())
		return
	}
	out := struct {
		Dead       []deadJSON `json:"dead"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Dead: make([]deadJSON, 0, len(dls)), NextCursor: next}
	for i := range dls {
		dl := &dls[i]
		dj := deadJSON{
			ID: string(dl.Delivery.ID), EventID: string(dl.Delivery.EventID),
			Route: dl.Delivery.Route, Target: dl.Delivery.Target,
			Method: string(dl.Delivery.Method), Path: string(dl.Delivery.Path),
			Query: kvPairs(dl.Delivery.Query), Headers: kvPairs(dl.Delivery.Headers),
			Body: string(dl.Delivery.Body), EnqueuedAt: dl.EnqueuedAt, DeadAt: dl.DeadAt,
		}
		if dl.Delivery.NotBefore != 0 {
			t := time.Unix(0, dl.Delivery.NotBefore)
			dj.NotBefore = &t
		}
		for _, a := range dl.Attempts {
			dj.Attempts = append(dj.Attempts, attemptJSON{At: a.At, Duration: a.Duration.String(), Status: a.Status, Error: a.Error, Body: string(a.Body)})
		}
		out.Dead = append(out.Dead, dj)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dispatcher) handleReplayOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" { // registered on a mux without path wildcards
		id = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/admin/dead/"), "/replay")
	}
	err := d.store.Replay(id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no dead letter has delivery id "+strconv.Quote(id)+"; list them with GET /admin/dead")
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "queue_error", err.Error())
		return
	}
	d.notifyAll()
	writeJSON(w, http.StatusOK, map[string]any{"replayed": 1, "id": id})
}

func (d *Dispatcher) handleReplayAll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.Filter{Target: q.Get("target"), Route: q.Get("route")}
	if f.Target == "" && f.Route == "" && q.Get("all") != "true" {
		writeError(w, http.StatusBadRequest, "no_filter", "say which dead letters to replay: ?target=NAME, ?route=NAME, or ?all=true for every one")
		return
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "bad_limit", "limit must be a whole number of at least 1 (omit it to replay all)")
			return
		}
		limit = n
	}
	n, err := d.store.ReplayAll(f, limit, nil)
	d.notifyAll()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "queue_error", err.Error()+" ("+strconv.Itoa(n)+" replayed before the error)")
		return
	}
	remaining, err := d.store.DeadCount(f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "queue_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": n, "remaining": remaining})
}

func (d *Dispatcher) notifyAll() {
	for _, l := range d.gen.Load().order {
		l.notify()
	}
}

// TargetQueue is one target's line in GET /admin/queue.
type TargetQueue struct {
	Depth     int    `json:"depth"`
	Leased    int    `json:"leased"`
	Bytes     int64  `json:"bytes"`
	OldestAge string `json:"oldest_age"`
	Dead      int    `json:"dead"`
	Breaker   string `json:"breaker,omitempty"` // "" for a target no longer configured
}

// QueueStats is what GET /admin/queue shows: every configured target, and
// any target that still has deliveries in the queue.
func (d *Dispatcher) QueueStats() map[string]TargetQueue {
	stats := d.store.Stats()
	order := d.gen.Load().order
	out := make(map[string]TargetQueue, len(stats)+len(order))
	for _, l := range order {
		out[l.name] = TargetQueue{OldestAge: "0s"}
	}
	for name, st := range stats {
		out[name] = TargetQueue{Depth: st.Depth, Leased: st.Leased, Bytes: st.Bytes, OldestAge: st.OldestAge.Round(time.Millisecond).String(), Dead: st.Dead}
	}
	for name, q := range out {
		q.Breaker = d.BreakerState(name)
		out[name] = q
	}
	return out
}

func (d *Dispatcher) handleQueue(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"targets": d.QueueStats()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg}})
}
