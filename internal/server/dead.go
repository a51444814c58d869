package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Limits of GET /admin/dead.
const (
	defaultDeadLimit = 50
	maxDeadLimit     = 1000
)

// errNoQueue answers the dead-letter and queue endpoints while no route
// has ever been async: there is no queue to look at.
var errNoQueue = admin.Errorf(http.StatusConflict, "no_queue", "no route is async, so there is no queue and no dead letter; make a route async (mode = \"async\") and reload")

// queued returns the dispatcher, or errNoQueue.
func (s *Server) queued() (*dispatch.Dispatcher, error) {
	if _, _, d := s.live(); d != nil {
		return d, nil
	}
	return nil, errNoQueue
}

type deadJSON struct {
	ID         string             `json:"id"`
	EventID    string             `json:"event_id"`
	Route      string             `json:"route"`
	Target     string             `json:"target"`
	Method     string             `json:"method,omitempty"`
	Path       string             `json:"path,omitempty"`
	Query      [][2]string        `json:"query,omitempty"`
	Headers    [][2]string        `json:"headers,omitempty"`
	Body       string             `json:"body"`
	NotBefore  *time.Time         `json:"not_before,omitempty"`
	EnqueuedAt time.Time          `json:"enqueued_at"`
	DeadAt     time.Time          `json:"dead_at"`
	Attempts   []delivery.Attempt `json:"attempts"`
}

func kvPairs(kvs []delivery.KV) [][2]string {
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, [2]string{string(kv.Key), string(kv.Value)})
	}
	return out
}

func queueError(err error) error {
	return admin.Errorf(http.StatusInternalServerError, "queue_error", "%v", err)
}

// deadList is GET /admin/dead?target=&route=&limit=&cursor=.
func (s *Server) deadList(r *http.Request) (any, error) {
	d, err := s.queued()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	limit := defaultDeadLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLimit {
			return nil, admin.Errorf(http.StatusBadRequest, "bad_limit", "limit must be a whole number from 1 to %d", maxDeadLimit)
		}
		limit = n
	}
	dls, next, err := d.DeadList(queue.Filter{Target: q.Get("target"), Route: q.Get("route")}, q.Get("cursor"), limit)
	if errors.Is(err, queue.ErrBadCursor) {
		return nil, admin.Errorf(http.StatusBadRequest, "bad_cursor", "%v", err)
	}
	if err != nil {
		return nil, queueError(err)
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
			Attempts: dl.Attempts,
		}
		if dl.Delivery.NotBefore != 0 {
			t := time.Unix(0, dl.Delivery.NotBefore)
			dj.NotBefore = &t
		}
		out.Dead = append(out.Dead, dj)
	}
	return out, nil
}

// replayOne is POST /admin/dead/{id}/replay.
func (s *Server) replayOne(r *http.Request) (any, error) {
	d, err := s.queued()
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	err = d.Replay(id)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, admin.Errorf(http.StatusNotFound, "not_found", "no dead letter has delivery id %q; list them with GET /admin/dead", id)
	}
	if err != nil {
		return nil, queueError(err)
	}
	return map[string]any{"replayed": 1, "id": id}, nil
}

// replayAll is POST /admin/dead/replay?target=|route=|all=true[&limit=N]:
// {"replayed": n, "remaining": m}.
func (s *Server) replayAll(r *http.Request) (any, error) {
	d, err := s.queued()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := queue.Filter{Target: q.Get("target"), Route: q.Get("route")}
	if f.Target == "" && f.Route == "" && q.Get("all") != "true" {
		return nil, admin.Errorf(http.StatusBadRequest, "no_filter", "say which dead letters to replay: ?target=NAME, ?route=NAME, or ?all=true for every one")
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, admin.Errorf(http.StatusBadRequest, "bad_limit", "limit must be a whole number of at least 1 (omit it to replay all)")
		}
		limit = n
	}
	n, remaining, err := d.ReplayAll(f, limit)
	if err != nil {
		return nil, queueError(fmt.Errorf("%w (%d replayed before the error)", err, n))
	}
	return map[string]any{"replayed": n, "remaining": remaining}, nil
}

// queue is GET /admin/queue.
func (s *Server) queue(*http.Request) (any, error) {
	d, err := s.queued()
	if err != nil {
		return nil, err
	}
	return map[string]any{"targets": d.Status()}, nil
}
