package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/journal"
)

// api calls the admin API's own handlers in-process: the console shows
// exactly what GET /admin/... answers (secrets redacted by the same code)
// and acts through the same replay and route-test code. There is one way
// to do each thing, and the console is not it.
type api struct {
	mux *http.ServeMux
}

func newAPI(routes []admin.Route) *api {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Method+" "+rt.Path, rt.Handler)
	}
	return &api{mux: mux}
}

// apiError is an admin API error answer.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

// errStatus is the status of an API error, 500 for anything else.
func errStatus(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// do runs method path?query with body and header through the API and
// decodes its answer into out.
func (a *api) do(ctx context.Context, method, path string, query url.Values, header http.Header, body io.Reader, out any) error {
	u := path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.RemoteAddr = "console"
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := &recorder{header: http.Header{}}
	a.mux.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		var e struct {
			Error apiError `json:"error"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil || e.Error.Message == "" {
			return &apiError{Status: rec.status, Code: "internal_error", Message: fmt.Sprintf("%s %s answered %d", method, path, rec.status)}
		}
		e.Error.Status = rec.status
		return &e.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.body.Bytes(), out)
}

func (a *api) get(ctx context.Context, path string, query url.Values, out any) error {
	return a.do(ctx, http.MethodGet, path, query, nil, nil, out)
}

// recorder is the http.ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// The API's answers, as the console reads them. Each mirrors the JSON of
// its endpoint (internal/server).

// targetView is one target of GET /admin/targets.
type targetView struct {
	admin.TargetInfo
	Queue *queueView `json:"queue"`
	Rate  rate       `json:"-"`
}

type queueView struct {
	Depth         int     `json:"depth"`
	Leased        int     `json:"leased"`
	Bytes         int64   `json:"bytes"`
	OldestPending float64 `json:"oldest_pending_seconds"`
	Dead          int     `json:"dead"`
	Breaker       string  `json:"breaker"`
}

// pluginView is one plugin of GET /admin/plugins.
type pluginView struct {
	Name      string           `json:"name"`
	Wasm      string           `json:"wasm"`
	Instances int              `json:"instances"`
	Busy      int              `json:"busy"`
	Idle      int              `json:"idle"`
	Timeout   string           `json:"timeout"`
	Calls     int64            `json:"calls"`
	Errors    map[string]int64 `json:"errors"`
	Created   int64            `json:"instances_created"`
	Discarded int64            `json:"instances_discarded"`
}

// ErrorTotal is the plugin's failures of every kind.
func (p pluginView) ErrorTotal() int64 {
	var n int64
	for _, v := range p.Errors {
		n += v
	}
	return n
}

// deadView is one dead letter of GET /admin/dead.
type deadView struct {
	ID         string             `json:"id"`
	EventID    string             `json:"event_id"`
	Route      string             `json:"route"`
	Target     string             `json:"target"`
	Method     string             `json:"method"`
	Path       string             `json:"path"`
	Query      [][2]string        `json:"query"`
	Headers    [][2]string        `json:"headers"`
	Body       string             `json:"body"`
	EnqueuedAt time.Time          `json:"enqueued_at"`
	DeadAt     time.Time          `json:"dead_at"`
	Attempts   []delivery.Attempt `json:"attempts"`
}

// LastError is what the last attempt said.
func (d deadView) LastError() string {
	if len(d.Attempts) == 0 {
		return ""
	}
	a := d.Attempts[len(d.Attempts)-1]
	if a.Error != "" {
		return a.Error
	}
	if a.Status != 0 {
		return fmt.Sprintf("status %d", a.Status)
	}
	return ""
}

// tryView is the answer of POST /admin/routes/{name}/test.
type tryView struct {
	Dropped    *string       `json:"dropped"`
	Deliveries []tryDelivery `json:"deliveries"`
	Response   *struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"response"`
	EventID string `json:"event_id"`
}

type tryDelivery struct {
	Target  string            `json:"target"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Delay   string            `json:"delay"`
	Sent    *sentView         `json:"sent"`
}

type sentView struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
	Truncated   bool   `json:"truncated"`
	Error       string `json:"error"`
	Duration    string `json:"duration"`
}

// The calls the pages make.

func (a *api) routes(ctx context.Context) (admin.RoutesResponse, error) {
	var v admin.RoutesResponse
	err := a.get(ctx, "/admin/routes", nil, &v)
	return v, err
}

func (a *api) targets(ctx context.Context) ([]targetView, error) {
	var v struct {
		Targets []targetView `json:"targets"`
	}
	err := a.get(ctx, "/admin/targets", nil, &v)
	return v.Targets, err
}

func (a *api) plugins(ctx context.Context) ([]pluginView, error) {
	var v struct {
		Plugins []pluginView `json:"plugins"`
	}
	err := a.get(ctx, "/admin/plugins", nil, &v)
	return v.Plugins, err
}

func (a *api) event(ctx context.Context, id string) (journal.Event, error) {
	var v journal.Event
	err := a.get(ctx, "/admin/events/"+url.PathEscape(id), nil, &v)
	return v, err
}

// recent is GET /admin/events: events after the id after, oldest first.
func (a *api) recent(ctx context.Context, after string, limit int) ([]journal.Event, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var v struct {
		Events []journal.Event `json:"events"`
	}
	err := a.get(ctx, "/admin/events", q, &v)
	return v.Events, err
}

func (a *api) dead(ctx context.Context, target, route, cursor string, limit int) ([]deadView, string, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	for k, v := range map[string]string{"target": target, "route": route, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var v struct {
		Dead       []deadView `json:"dead"`
		NextCursor string     `json:"next_cursor"`
	}
	err := a.get(ctx, "/admin/dead", q, &v)
	return v.Dead, v.NextCursor, err
}

func (a *api) replayOne(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, "/admin/dead/"+url.PathEscape(id)+"/replay", nil, nil, nil, nil)
}

// replayAll replays up to limit (0: all) dead letters of target.
func (a *api) replayAll(ctx context.Context, target string, limit int) (replayed, remaining int, err error) {
	q := url.Values{"target": {target}}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var v struct {
		Replayed  int `json:"replayed"`
		Remaining int `json:"remaining"`
	}
	err = a.do(ctx, http.MethodPost, "/admin/dead/replay", q, nil, nil, &v)
	return v.Replayed, v.Remaining, err
}

// routeTest runs payload through route with the event's headers; send:
// send the deliveries for real.
func (a *api) routeTest(ctx context.Context, route string, header http.Header, payload []byte, send bool) (tryView, error) {
	var q url.Values
	if send {
		q = url.Values{"send": {"true"}}
	}
	var v tryView
	err := a.do(ctx, http.MethodPost, "/admin/routes/"+url.PathEscape(route)+"/test", q, header, bytes.NewReader(payload), &v)
	return v, err
}
