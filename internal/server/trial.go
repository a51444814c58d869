package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/transforms"
)

// sentBodyMax is how much of a target's answer a test send shows.
const sentBodyMax = 4 << 10

// testRunner runs route tests in a plugin host of their own: a test must
// not touch the key-value state (counters, thresholds) the live plugins
// keep. Tests run one at a time; they are for people, not traffic.
type testRunner struct {
	mu   sync.Mutex
	host *transforms.Host
}

// chain builds rc's chain in the test host, loading the plugins it needs
// as cfg has them now (unchanged ones are not loaded again). Call it with
// mu held.
func (t *testRunner) chain(ctx context.Context, cfg *config.Config, rc *config.Route) (gateway.Chain, error) {
	if len(rc.Transforms) == 0 {
		return nil, nil
	}
	if t.host == nil {
		h, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir})
		if err != nil {
			return nil, err
		}
		t.host = h
	}
	used := map[string]bool{}
	for _, s := range rc.Transforms {
		used[s.Plugin] = true
	}
	mods, err := readPlugins(cfg, used)
	if err != nil {
		return nil, err
	}
	if err := loadPlugins(ctx, t.host, cfg, mods); err != nil {
		return nil, err
	}
	// No test is running: plugins replaced by a newer .wasm can go.
	t.host.CloseRetired(ctx)
	return Chains{Host: t.host}.Build(*rc)
}

func (t *testRunner) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.host != nil {
		t.host.Close(context.Background())
		t.host = nil
	}
}

// notPassed are request headers a route test does not hand to the chain:
// the admin token is ours, the others belong to this HTTP connection.
var notPassed = map[string]bool{"Authorization": true, "Host": true, "Content-Length": true, "Connection": true,
	"Accept-Encoding": true, "Transfer-Encoding": true, "Te": true, "Upgrade": true, "Keep-Alive": true}

// sentJSON is what a target answered a test send.
type sentJSON struct {
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body"` // the first 4 KiB
	Truncated   bool   `json:"truncated,omitempty"`
	Error       string `json:"error,omitempty"` // no answer: dial error, timeout, reset
	Duration    string `json:"duration"`
}

type sentDelivery struct {
	TryDelivery
	Sent sentJSON `json:"sent"`
}

// routeTest is POST /admin/routes/{name}/test: the body is the payload,
// the request's headers (but Authorization) and query (but send) are the
// event's, without the route's sender credential, as at ingest. It
// answers what `hookgate try` prints, as {"deliveries":[...]} or
// {"dropped":"reason"}; with ?send=true each delivery is also sent
// now, straight to its target with the target's auth and signing (no
// queue, no retry), and the answer comes back.
func (s *Server) routeTest(r *http.Request) (any, error) {
	cfg := s.gw.Config()
	name := r.PathValue("name")
	rc := cfg.Route(name)
	if rc == nil {
		var names []string
		for _, rr := range cfg.Routes {
			names = append(names, rr.Name)
		}
		return nil, admin.Errorf(http.StatusNotFound, "route_not_found", "no route named %q; the routes are: %s", name, strings.Join(names, ", "))
	}
	send := false
	if v := r.URL.Query().Get("send"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, admin.Errorf(http.StatusBadRequest, "bad_send", "send must be true or false")
		}
		send = b
	}
	// The sender's credential for hookgate goes no further than at ingest,
	// taken out by the same code: a test shows and sends what a real
	// request would make.
	cred, err := gateway.RouteCredential(rc)
	if err != nil {
		return nil, admin.Errorf(http.StatusInternalServerError, "verify_setup_failed", "route %q: %v", rc.Name, err)
	}
	query := cred.AppendQuery(nil, delivery.AppendQueryWithout(nil, []byte(r.URL.RawQuery), []byte("send")))
	body, err := io.ReadAll(io.LimitReader(r.Body, rc.MaxBody+1))
	if err != nil || int64(len(body)) > rc.MaxBody {
		return nil, admin.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the payload is over route %q's max_body (%d bytes)", rc.Name, rc.MaxBody)
	}
	if rc.JSON && !json.Valid(body) {
		return nil, admin.Errorf(http.StatusBadRequest, "invalid_json", "route %q expects JSON and the payload is not valid JSON; ingest would answer 400", rc.Name)
	}
	var headers []delivery.KV
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !notPassed[k] && !cred.IsHeader([]byte(k)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			headers = append(headers, delivery.KV{Key: []byte(k), Value: []byte(v)})
		}
	}

	s.test.mu.Lock()
	defer s.test.mu.Unlock()
	chain, err := s.test.chain(r.Context(), cfg, rc)
	if err != nil {
		return nil, admin.Errorf(http.StatusInternalServerError, "plugin_load_failed", "route %q: %v", rc.Name, err)
	}
	res, err := tryRoute(r.Context(), cfg, rc, chain, headers, query, body)
	if err != nil {
		return nil, admin.Errorf(http.StatusBadGateway, "plugin_failed", "route %q: the transforms failed: %v; ingest would answer 502", rc.Name, err)
	}
	if res.Dropped != nil || !send {
		return res, nil
	}
	sent, err := sendNow(cfg, res.raw)
	if err != nil {
		return nil, admin.Errorf(http.StatusInternalServerError, "target_setup_failed", "%v", err)
	}
	out := struct {
		EventID    string         `json:"event_id"`
		Deliveries []sentDelivery `json:"deliveries"`
		Response   *TryResponse   `json:"response,omitempty"`
	}{EventID: res.EventID, Deliveries: make([]sentDelivery, len(res.Deliveries)), Response: res.Response}
	for i := range res.Deliveries {
		out.Deliveries[i] = sentDelivery{TryDelivery: res.Deliveries[i], Sent: sent[i]}
		s.log.Info("admin: test send", "route", rc.Name, "event_id", res.EventID, "target", res.Deliveries[i].Target,
			"status", sent[i].Status, "error", sent[i].Error)
	}
	return out, nil
}

// sendNow sends ds one after the other with fresh clients of cfg's
// targets (the live ones belong to the route table and may be swapped by
// a reload under us); each is one attempt, never retried or queued.
func sendNow(cfg *config.Config, ds []delivery.Delivery) ([]sentJSON, error) {
	set, err := target.NewSet(cfg.Targets)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	out := make([]sentJSON, len(ds))
	var res target.Result
	for i := range ds {
		c := set.Get(ds[i].Target)
		if c == nil {
			out[i] = sentJSON{Error: fmt.Sprintf("target %q is not defined", ds[i].Target), Duration: "0s"}
			continue
		}
		res.Reset()
		start := time.Now()
		err := c.Do(&ds[i], &res)
		took := time.Since(start)
		if err != nil {
			out[i] = sentJSON{Error: err.Error(), Duration: took.String()}
			if errors.Is(err, context.DeadlineExceeded) {
				out[i].Error += " (the target's timeout)"
			}
			continue
		}
		b := res.Body
		out[i] = sentJSON{Status: res.Status, ContentType: string(res.ContentType), Duration: took.String()}
		if len(b) > sentBodyMax {
			b, out[i].Truncated = b[:sentBodyMax], true
		}
		out[i].Body = string(b)
	}
	return out, nil
}

// Try runs payload through route rc of cfg exactly as ingest would,
// sending nothing: the plugins the route uses are loaded into a plugin
// host of its own (logging to logger) and closed again. headers are the
// event's request headers.
func Try(ctx context.Context, cfg *config.Config, rc *config.Route, headers []delivery.KV, payload []byte, logger *slog.Logger) (TryResult, error) {
	var chain gateway.Chain
	if len(rc.Transforms) > 0 {
		used := map[string]bool{}
		for _, s := range rc.Transforms {
			used[s.Plugin] = true
		}
		host, err := newHost(ctx, cfg, logger, used)
		if err != nil {
			return TryResult{}, err
		}
		defer host.Close(context.Background())
		if chain, err = (Chains{Host: host}).Build(*rc); err != nil {
			return TryResult{}, fmt.Errorf("route %q: %w", rc.Name, err)
		}
	}
	res, err := tryRoute(ctx, cfg, rc, chain, headers, nil, payload)
	if err != nil {
		return res, fmt.Errorf("route %q: the transforms failed: %w", rc.Name, err)
	}
	return res, nil
}

// TryResult is what a route does with one payload, as `hookgate try`
// prints it and POST /admin/routes/{name}/test answers it: the
// deliveries (secrets redacted), or the reason a plugin dropped it.
type TryResult struct {
	Dropped    *string             `json:"dropped,omitempty"`
	Deliveries []TryDelivery       `json:"deliveries,omitempty"`
	Response   *TryResponse        `json:"response,omitempty"` // a sync route's plugin answers the sender itself
	EventID    string              `json:"event_id"`
	raw        []delivery.Delivery // what a test send sends
}

// TryResponse is a plugin's own answer to the sender (sync routes).
type TryResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// tryRoute runs payload through route rc exactly as ingest would (chain
// nil when the route has no transforms) and returns the deliveries it
// makes. The error is the chain's.
func tryRoute(ctx context.Context, cfg *config.Config, rc *config.Route, chain gateway.Chain, headers []delivery.KV, query, payload []byte) (TryResult, error) {
	ev := delivery.Event{
		ID:         gateway.NewEventID(),
		Route:      rc.Name,
		ReceivedAt: time.Now().UnixNano(),
		Method:     []byte(rc.Method),
		Path:       []byte(strings.TrimSuffix(rc.Path, "*")),
		Query:      query,
		Headers:    headers,
		Body:       payload,
	}
	res := TryResult{EventID: string(ev.ID)}
	// Copies: a plugin rewrites the event's method, path and query in place.
	in := delivery.Original{Method: append([]byte(nil), ev.Method...), Path: append([]byte(nil), ev.Path...), Query: append([]byte(nil), ev.Query...)}
	var out delivery.Outcome
	if chain != nil {
		if err := chain.Run(ctx, &ev, &out); err != nil {
			return res, err
		}
	}
	if out.Dropped {
		reason := string(out.DropReason)
		res.Dropped = &reason
		return res, nil
	}
	if out.Response.Set && rc.Mode == config.ModeSync {
		res.Response = &TryResponse{Status: out.Response.Status, Body: string(out.Response.Body)}
	}
	ds := out.Deliveries
	if !out.Emitted {
		ds = delivery.Defaults(nil, &ev, in, out.NotBefore, rc.Targets)
	}
	res.Deliveries = []TryDelivery{}
	shown := newDescriber(cfg)
	defer shown.close()
	for i := range ds {
		d := &ds[i]
		d.ID = fmt.Appendf(nil, "%s.%d", ev.ID, i)
		d.EventID, d.Route = ev.ID, rc.Name
		if rc.Delay > 0 && d.NotBefore < ev.ReceivedAt+int64(rc.Delay) {
			d.NotBefore = ev.ReceivedAt + int64(rc.Delay)
		}
		res.Deliveries = append(res.Deliveries, shown.describe(d, ev.ReceivedAt))
	}
	res.raw = ds
	return res, nil
}

// TryDelivery is one delivery as try prints it: what the target client
// would send, secrets redacted.
type TryDelivery struct {
	Target  string            `json:"target"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Delay   string            `json:"delay"`
}

// Computed is what a signature or timestamp header shows: it is computed
// when the delivery is sent, over the bytes and time of that attempt.
const Computed = target.Computed

// describer renders deliveries as the target clients of one config would
// send them, secrets redacted; the clients are built on first use and
// never dial.
type describer struct {
	cfg     *config.Config
	clients map[string]*target.Client
	errs    map[string]error
}

func newDescriber(cfg *config.Config) *describer {
	return &describer{cfg: cfg, clients: map[string]*target.Client{}, errs: map[string]error{}}
}

// describe is d as its target client's Describe shows it, with the delay
// from receivedAt.
func (ds *describer) describe(d *delivery.Delivery, receivedAt int64) TryDelivery {
	out := TryDelivery{Target: d.Target, Method: string(d.Method), Headers: map[string]string{}, Body: string(d.Body), Delay: "0s"}
	if d.NotBefore > receivedAt {
		out.Delay = time.Duration(d.NotBefore - receivedAt).String()
	}
	c, err := ds.client(d.Target)
	if err != nil {
		out.URL = "(" + err.Error() + ")"
		return out
	}
	r := c.Describe(d)
	out.Method, out.URL, out.Body = r.Method, r.URL, r.Body
	for _, h := range r.Header {
		if v, ok := out.Headers[h.Name]; ok {
			out.Headers[h.Name] = v + ", " + h.Value // a repeated header, as a receiver joins it
		} else {
			out.Headers[h.Name] = h.Value
		}
	}
	return out
}

func (ds *describer) client(name string) (*target.Client, error) {
	if c := ds.clients[name]; c != nil {
		return c, nil
	}
	if err := ds.errs[name]; err != nil {
		return nil, err
	}
	t := ds.cfg.Target(name)
	if t == nil {
		// Only if the config and the chain disagree.
		ds.errs[name] = errors.New("target not defined")
		return nil, ds.errs[name]
	}
	c, err := target.New(*t)
	if err != nil {
		ds.errs[name] = err
		return nil, err
	}
	ds.clients[name] = c
	return c, nil
}

func (ds *describer) close() {
	for _, c := range ds.clients {
		c.Close()
	}
}
