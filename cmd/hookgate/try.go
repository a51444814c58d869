package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
)

const tryHelp = `Usage: hookgate try --config FILE --route NAME --payload FILE

Run one payload through a route's transforms, exactly as the gateway would,
and print each delivery it would make as one JSON line with the keys target,
method, url, headers, body and delay; or {"dropped": "reason"} when a plugin
drops it. Nothing is sent. Secret values (auth, tokens, ${env:...} header and
query values) print redacted; signature headers print as computed when sent.
A plugin error exits 1 with the plugin's message. Use it while writing a
plugin or a route, as a "test send" that sends nothing.
`

func runTry(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("try", tryHelp, stdout)
	path := fs.String("config", "config.toml", "config file")
	routeName := fs.String("route", "", "name of the route to try (required)")
	payloadPath := fs.String("payload", "", "file holding the request body to try (required)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *routeName == "" || *payloadPath == "" {
		fmt.Fprintln(stderr, "hookgate try: --route and --payload are required\nRun 'hookgate try --help' for the flags.")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	rc := cfg.Route(*routeName)
	if rc == nil {
		var names []string
		for _, r := range cfg.Routes {
			names = append(names, r.Name)
		}
		fmt.Fprintf(stderr, "hookgate try: no route named %q in %s; the routes are: %s\n", *routeName, cfg.Path, strings.Join(names, ", "))
		return 1
	}
	payload, err := os.ReadFile(*payloadPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate try: cannot read the payload: %v\n", err)
		return 1
	}
	if rc.JSON && !json.Valid(payload) {
		fmt.Fprintf(stderr, "hookgate try: %s is not valid JSON; route %q expects JSON and would answer 400\n", *payloadPath, rc.Name)
		return 1
	}

	var chain gateway.Chain
	if len(rc.Transforms) > 0 {
		used := map[string]bool{}
		for _, s := range rc.Transforms {
			used[s.Plugin] = true
		}
		host, err := newHost(ctx, cfg, newLogger(cfg.Log, stderr), used)
		if err != nil {
			fmt.Fprintf(stderr, "hookgate try: %v\n", err)
			return 1
		}
		defer host.Close(context.Background())
		if chain, err = newChainBuilder(host).Build(*rc); err != nil {
			fmt.Fprintf(stderr, "hookgate try: route %q: %v\n", rc.Name, err)
			return 1
		}
	}
	headers := []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}}
	res, err := tryRoute(ctx, cfg, rc, chain, headers, nil, payload)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate try: route %q: the transforms failed: %v\n", rc.Name, err)
		return 1
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if res.Dropped != nil {
		enc.Encode(map[string]string{"dropped": *res.Dropped})
		return 0
	}
	if res.Response != nil {
		fmt.Fprintf(stderr, "hookgate try: the sender would get status %d with body %q\n", res.Response.Status, res.Response.Body)
	}
	for _, d := range res.Deliveries {
		if err := enc.Encode(d); err != nil {
			fmt.Fprintf(stderr, "hookgate try: %v\n", err)
			return 1
		}
	}
	return 0
}

// tryResult is what a route does with one payload, as `hookgate try`
// prints it and POST /admin/routes/{name}/test answers it: the
// deliveries (secrets redacted), or the reason a plugin dropped it.
type tryResult struct {
	Dropped    *string             `json:"dropped,omitempty"`
	Deliveries []tryDelivery       `json:"deliveries,omitempty"`
	Response   *tryResponse        `json:"response,omitempty"` // a sync route's plugin answers the sender itself
	EventID    string              `json:"event_id"`
	raw        []delivery.Delivery // what a test send sends
}

// tryResponse is a plugin's own answer to the sender (sync routes).
type tryResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// tryRoute runs payload through route rc exactly as ingest would (chain
// nil when the route has no transforms) and returns the deliveries it
// makes. The error is the chain's.
func tryRoute(ctx context.Context, cfg *config.Config, rc *config.Route, chain gateway.Chain, headers []delivery.KV, query, payload []byte) (tryResult, error) {
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
	res := tryResult{EventID: string(ev.ID)}
	inMethod, inPath := string(ev.Method), string(ev.Path)
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
		res.Response = &tryResponse{Status: out.Response.Status, Body: string(out.Response.Body)}
	}
	ds := out.Deliveries
	if !out.Emitted {
		ds = nil
		for _, name := range rc.Targets {
			d := delivery.Delivery{Target: name, Body: ev.Body, Headers: ev.Headers}
			if string(ev.Method) != inMethod {
				d.Method = ev.Method
			}
			if string(ev.Path) != inPath {
				d.Path = ev.Path
			}
			ds = append(ds, d)
		}
	}
	res.Deliveries = []tryDelivery{}
	for i := range ds {
		d := &ds[i]
		d.ID = fmt.Appendf(nil, "%s.%d", ev.ID, i)
		d.EventID, d.Route = ev.ID, rc.Name
		if rc.Delay > 0 && d.NotBefore < ev.ReceivedAt+int64(rc.Delay) {
			d.NotBefore = ev.ReceivedAt + int64(rc.Delay)
		}
		res.Deliveries = append(res.Deliveries, describe(cfg.Target(d.Target), d, ev.ReceivedAt))
	}
	res.raw = ds
	return res, nil
}

// tryDelivery is one line of try's output.
type tryDelivery struct {
	Target  string            `json:"target"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Delay   string            `json:"delay"`
}

const (
	redacted = "[redacted]"
	computed = "[computed when sent]"
)

// harmless are header names whose literal configured values are shown:
// they describe the body, not who is calling.
var harmless = map[string]bool{"content-type": true, "accept": true, "user-agent": true, "content-language": true}

// describe renders what the target client would send for d, with secrets
// redacted. t is nil only if the config and the chain disagree.
func describe(t *config.Target, d *delivery.Delivery, receivedAt int64) tryDelivery {
	out := tryDelivery{Target: d.Target, Method: string(d.Method), Headers: map[string]string{}, Body: string(d.Body), Delay: "0s"}
	if d.NotBefore > receivedAt {
		out.Delay = time.Duration(d.NotBefore - receivedAt).String()
	}
	if t == nil {
		out.URL = "(target not defined)"
		return out
	}
	if out.Method == "" {
		out.Method = t.Method
	}
	u := *t.URL
	u.User = nil
	if len(d.Path) > 0 {
		u.RawPath, u.Path = "", ""
		if p, err := url.PathUnescape(string(d.Path)); err == nil {
			u.Path, u.RawPath = p, string(d.Path)
		}
	}
	// Static query (redacted as configured), then the delivery's own,
	// which replaces a static key of the same name.
	// The URL's own query first (values redacted: it is sent, and it may
	// hold a token), then the static query over it, as the target client
	// builds it.
	type kv struct{ k, v string }
	var query []kv
	set := func(k, v string) {
		for i := range query {
			if query[i].k == k {
				query[i].v = v
				return
			}
		}
		query = append(query, kv{k, v})
	}
	for pair := range strings.SplitSeq(t.URL.RawQuery, "&") {
		if pair != "" {
			k, _, _ := strings.Cut(pair, "=")
			query = append(query, kv{k, redacted})
		}
	}
	for _, k := range sortedKeys(t.Query) {
		set(url.QueryEscape(k), t.Query[k].String())
	}
	for _, q := range d.Query {
		k := url.QueryEscape(string(q.Key))
		v := url.QueryEscape(string(q.Value))
		replaced := false
		for i := range query {
			if query[i].k == k {
				query[i].v, replaced = v, true
			}
		}
		if !replaced {
			query = append(query, kv{k, v})
		}
	}
	u.RawQuery = ""
	s := u.String()
	for i, q := range query {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		s += sep + q.k + "=" + q.v
	}
	out.URL = s

	for _, k := range sortedKeys(t.Headers) {
		v := t.Headers[k]
		shown := v.String()
		if shown == redacted && harmless[strings.ToLower(k)] {
			shown = v.Reveal()
		}
		out.Headers[k] = shown
	}
	for _, h := range d.Headers {
		out.Headers[string(h.Key)] = string(h.Value)
	}
	if t.IDHeader != "" {
		out.Headers[t.IDHeader] = string(d.ID)
	}
	switch t.Auth.Type {
	case config.AuthBasic, config.AuthBearer:
		out.Headers["Authorization"] = redacted
	case config.AuthHeader:
		out.Headers[t.Auth.Header] = redacted
	case config.AuthHMAC:
		h := t.Auth.Header
		if h == "" {
			h = "X-Hookgate-Signature"
		}
		out.Headers[h] = computed
	case config.AuthStandardWebhooks:
		out.Headers["webhook-id"] = string(d.ID)
		out.Headers["webhook-timestamp"] = computed
		out.Headers["webhook-signature"] = computed
	}
	return out
}

func sortedKeys(m map[string]config.Secret) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
