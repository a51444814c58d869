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

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/delivery"
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

	ev := delivery.Event{
		ID:         gateway.NewEventID(),
		Route:      rc.Name,
		ReceivedAt: time.Now().UnixNano(),
		Method:     []byte(rc.Method),
		Path:       []byte(strings.TrimSuffix(rc.Path, "*")),
		Headers:    []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}},
		Body:       payload,
	}
	inMethod, inPath := string(ev.Method), string(ev.Path)
	var out delivery.Outcome
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
		chain, err := newChainBuilder(host).Build(*rc)
		if err != nil {
			fmt.Fprintf(stderr, "hookgate try: route %q: %v\n", rc.Name, err)
			return 1
		}
		if err := chain.Run(ctx, &ev, &out); err != nil {
			fmt.Fprintf(stderr, "hookgate try: route %q: the transforms failed: %v\n", rc.Name, err)
			return 1
		}
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if out.Dropped {
		enc.Encode(map[string]string{"dropped": string(out.DropReason)})
		return 0
	}
	if out.Response.Set && rc.Mode == config.ModeSync {
		fmt.Fprintf(stderr, "hookgate try: the sender would get status %d with body %q\n", out.Response.Status, out.Response.Body)
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
	for i := range ds {
		d := &ds[i]
		d.ID = fmt.Appendf(nil, "%s.%d", ev.ID, i)
		if rc.Delay > 0 && d.NotBefore < ev.ReceivedAt+int64(rc.Delay) {
			d.NotBefore = ev.ReceivedAt + int64(rc.Delay)
		}
		if err := enc.Encode(describe(cfg.Target(d.Target), d, ev.ReceivedAt)); err != nil {
			fmt.Fprintf(stderr, "hookgate try: %v\n", err)
			return 1
		}
	}
	return 0
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
	type kv struct{ k, v string }
	var query []kv
	for _, k := range sortedKeys(t.Query) {
		query = append(query, kv{url.QueryEscape(k), t.Query[k].String()})
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
