package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	if err := loadPlugins(ctx, t.host, cfg, used); err != nil {
		return nil, err
	}
	// No test is running: plugins replaced by a newer .wasm can go.
	t.host.CloseRetired(ctx)
	return newChainBuilder(t.host).Build(*rc)
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
	tryDelivery
	Sent sentJSON `json:"sent"`
}

// handleRouteTest is POST /admin/routes/{name}/test: the body is the
// payload, the request's headers (but Authorization) and query (but send)
// are the event's. It answers what `hookgate try` prints, as
// {"deliveries":[...]} or {"dropped":"reason"}; with ?send=true each
// delivery is also sent now, straight to its target with the target's
// auth and signing (no queue, no retry), and the answer comes back.
func (s *server) handleRouteTest(w http.ResponseWriter, r *http.Request) {
	cfg := s.gw.Config()
	name := r.PathValue("name")
	rc := cfg.Route(name)
	if rc == nil {
		var names []string
		for _, rr := range cfg.Routes {
			names = append(names, rr.Name)
		}
		admin.WriteError(w, http.StatusNotFound, "route_not_found", fmt.Sprintf("no route named %q; the routes are: %s", name, strings.Join(names, ", ")))
		return
	}
	q := r.URL.Query()
	send := false
	if v := q.Get("send"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			admin.WriteError(w, http.StatusBadRequest, "bad_send", "send must be true or false")
			return
		}
		send = b
	}
	q.Del("send")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.MaxBody))
	if err != nil {
		admin.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the payload is over route %q's max_body (%d bytes)", rc.Name, rc.MaxBody))
		return
	}
	if rc.JSON && !json.Valid(body) {
		admin.WriteError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("route %q expects JSON and the payload is not valid JSON; ingest would answer 400", rc.Name))
		return
	}
	var headers []delivery.KV
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !notPassed[k] {
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
		admin.WriteError(w, http.StatusInternalServerError, "plugin_load_failed", fmt.Sprintf("route %q: %v", rc.Name, err))
		return
	}
	res, err := tryRoute(r.Context(), cfg, rc, chain, headers, []byte(q.Encode()), body)
	if err != nil {
		admin.WriteError(w, http.StatusBadGateway, "plugin_failed", fmt.Sprintf("route %q: the transforms failed: %v; ingest would answer 502", rc.Name, err))
		return
	}
	if res.Dropped != nil || !send {
		admin.WriteJSON(w, http.StatusOK, res)
		return
	}
	sent, err := s.sendNow(cfg, res.raw)
	if err != nil {
		admin.WriteError(w, http.StatusInternalServerError, "target_setup_failed", err.Error())
		return
	}
	out := struct {
		EventID    string         `json:"event_id"`
		Deliveries []sentDelivery `json:"deliveries"`
		Response   *tryResponse   `json:"response,omitempty"`
	}{EventID: res.EventID, Deliveries: make([]sentDelivery, len(res.Deliveries)), Response: res.Response}
	for i := range res.Deliveries {
		out.Deliveries[i] = sentDelivery{tryDelivery: res.Deliveries[i], Sent: sent[i]}
		s.log.Info("admin: test send", "route", rc.Name, "event_id", res.EventID, "target", res.Deliveries[i].Target,
			"status", sent[i].Status, "error", sent[i].Error)
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

// sendNow sends ds one after the other with fresh clients of cfg's
// targets (the live ones belong to the route table and may be swapped by
// a reload under us); each is one attempt, never retried or queued.
func (s *server) sendNow(cfg *config.Config, ds []delivery.Delivery) ([]sentJSON, error) {
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
