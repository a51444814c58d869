package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/gateway/verify"
)

func (p *parser) server(t *table) Server {
	s := Server{
		Listen:          t.str("listen", DefaultServerListen),
		MaxBody:         t.bytes("max_body", DefaultMaxBody, math.MaxInt32),
		MaxHeaderBytes:  int(t.bytes("max_header_bytes", DefaultMaxHeaderBytes, math.MaxInt32)),
		ReadTimeout:     t.positive("read_timeout", DefaultReadTimeout),
		WriteTimeout:    t.positive("write_timeout", DefaultWriteTimeout),
		IdleTimeout:     t.positive("idle_timeout", DefaultIdleTimeout),
		ShutdownTimeout: t.positive("shutdown_timeout", DefaultShutdownTimeout),
		MaxConcurrency:  t.intOf("max_concurrency", DefaultMaxConcurrency, 1),
		MaxBodyMemory:   t.bytes("max_body_memory", DefaultMaxBodyMemory, math.MaxInt64),
		PerIPShare:      t.float("per_ip_share", DefaultPerIPShare),
	}
	if !(s.PerIPShare > 0 && s.PerIPShare <= 1) {
		t.errf("per_ip_share", "%v is not a share: use a number above 0 and at most 1 (0.5: one address may hold half; 1 behind a proxy)", s.PerIPShare)
	}
	if !validListen(s.Listen) {
		t.errf("listen", "%q is not host:port (use e.g. \"127.0.0.1:8080\", or \":8080\" for every interface)", s.Listen)
	}
	t.done()
	return s
}

func (p *parser) admin(t *table, server Server) Admin {
	a := Admin{
		Listen: t.str("listen", DefaultAdminListen),
		Token:  t.secret("token"),
	}
	t.literalSecret("token", a.Token)
	switch {
	case a.Listen == "":
		// The admin listener is off.
	case !validListen(a.Listen):
		t.errf("listen", "%q is not host:port (use e.g. \"127.0.0.1:8081\"; \"\" turns the admin listener off)", a.Listen)
	case a.Listen == server.Listen:
		t.errf("listen", "%q is also server.listen; give the admin listener its own port", a.Listen)
	case !isLoopback(a.Listen) && !a.Token.IsSet():
		// Admin can replay and drop deliveries: never open it to a network
		// without a credential.
		t.errf("listen", "%q is reachable from other machines but admin.token is not set; set token = \"${env:HOOKGATE_ADMIN_TOKEN}\" or listen on 127.0.0.1", a.Listen)
	}
	t.done()
	return a
}

func (p *parser) queue(t *table) Queue {
	q := Queue{
		Path:     p.resolve(t.str("path", DefaultQueuePath)),
		Sync:     t.str("sync", DefaultQueueSync),
		MaxDepth: t.intOf("max_depth", DefaultQueueMaxDepth, 1),
		MaxBytes: t.bytes("max_bytes", DefaultQueueMaxBytes, math.MaxInt64),
		Workers:  t.intOf("workers", 0, 0),
		MinFree:  t.size("min_free", 0),
		Backend:  t.str("backend", DefaultQueueBackend),
	}
	switch q.Backend {
	case QueueBackendPebble:
		if t.has("nats") {
			t.p.warnings = append(t.p.warnings, t.at("nats")+": ignored while backend = \"pebble\"; set backend = \"nats\" to use it")
		}
	case QueueBackendNATS:
		q.NATS = p.natsQueue(t.sub("nats"))
	default:
		t.errf("backend", "%q is not a queue backend (use %q: the embedded store, or %q: a NATS JetStream stream shared by several gateways)", q.Backend, QueueBackendPebble, QueueBackendNATS)
	}
	if q.MinFree < 0 {
		t.errf("min_free", "must not be negative (e.g. min_free = \"512MiB\"; 0 keeps the default)")
	}
	if q.Path == "" {
		t.errf("path", "must not be empty (e.g. path = %q)", DefaultQueuePath)
	}
	if q.Sync != QueueSyncAlways && q.Sync != QueueSyncBatch {
		t.errf("sync", "%q is not a sync policy (use %q: fsync before every 202, or %q: background flush)", q.Sync, QueueSyncAlways, QueueSyncBatch)
	}
	t.done()
	return q
}

// natsQueue reads [queue.nats].
func (p *parser) natsQueue(t *table) NATS {
	n := NATS{
		URLs:     t.strs("urls"),
		Stream:   t.str("stream", DefaultNATSStream),
		Replicas: t.intOf("replicas", DefaultNATSReplicas, 1),
		Token:    t.secret("token"),
		User:     t.str("user", ""),
		Password: t.secret("password"),
		NKey:     t.secret("nkey"),
		Name:     t.str("name", ""),
		Lease:    t.positive("lease", DefaultNATSLease),
	}
	if n.Lease < time.Second {
		t.errf("lease", "%s is too short: a lease must outlast the round trips that renew it (use 1s or more; the default is %s)", n.Lease, DefaultNATSLease)
	}
	if !t.has("urls") {
		n.URLs = []string{DefaultNATSURL}
	}
	if len(n.URLs) == 0 {
		t.errf("urls", "must name at least one server (e.g. urls = [%q])", DefaultNATSURL)
	}
	for i, u := range n.URLs {
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
			shown := strconv.Quote(u)
			if strings.Contains(u, "@") {
				shown = "entry " + strconv.Itoa(i+1) // it may hold a password
			}
			t.errf("urls", "%s is not a NATS server URL (write it as \"nats://host:4222\", or \"tls://host:4222\" for TLS)", shown)
		}
	}
	if !validStreamName(n.Stream) {
		t.errf("stream", "%q is not a usable stream name (letters, digits, '-' and '_' only, e.g. %q)", n.Stream, DefaultNATSStream)
	}
	if n.Replicas > 5 {
		t.errf("replicas", "%d is out of range: JetStream keeps 1 to 5 copies (3 in a 3-node cluster)", n.Replicas)
	}
	if c := t.str("creds", ""); c != "" {
		n.Creds = p.resolve(c)
	}
	methods := 0
	for _, set := range []bool{n.Token.IsSet(), n.User != "" || n.Password.IsSet(), n.NKey.IsSet(), n.Creds != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		t.errf("token", "set one way to authenticate: token, user and password, nkey, or creds")
	}
	if n.Password.IsSet() && n.User == "" {
		t.errf("user", "is missing: password needs the user it belongs to")
	}
	n.TLS = p.tls(t.sub("tls"))
	t.done()
	return n
}

// validStreamName: JetStream stream names may not hold '.', '*', '>',
// whitespace or path separators; hookgate also derives subject and bucket
// names from it, so it keeps to a safe alphabet.
func validStreamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// operations reads [operations]: targets are read already, so the target
// it names is checked here.
func (p *parser) operations(t *table, targets []Target) Operations {
	o := Operations{
		Target:    t.str("target", ""),
		Events:    t.strs("events"),
		HighWater: t.float("high_water", DefaultOperationsHighWater),
	}
	if !t.has("events") {
		o.Events = append([]string(nil), OperationEvents...)
	}
	for _, e := range o.Events {
		if !contains(OperationEvents, e) {
			t.errf("events", "%q is not an operational event (use %s)", e, strings.Join(OperationEvents, ", "))
		}
	}
	if o.HighWater <= 0 || o.HighWater > 1 {
		t.errf("high_water", "%v is out of range (use a fraction of the queue's budget above 0 and at most 1, e.g. 0.8)", o.HighWater)
		o.HighWater = DefaultOperationsHighWater
	}
	switch {
	case o.Target == "":
		if len(t.m) > 0 {
			t.errf("target", "is missing: name the [[target]] that receives hookgate's operational events (e.g. target = \"ops\")")
		}
	default:
		var tg *Target
		for i := range targets {
			if targets[i].Name == o.Target {
				tg = &targets[i]
			}
		}
		switch {
		case tg == nil:
			var ns names
			for _, x := range targets {
				ns = append(ns, x.Name)
			}
			t.errf("target", "%q is not defined (%s)", o.Target, ns.defined("target"))
		case tg.Auth.Type == AuthNone:
			// An unsigned "target.disabled" is an invitation to forge one.
			t.errf("target", "%q has no auth, and operational events must be signed: give it auth = { type = \"standard-webhooks\", secret = \"${env:OPS_WEBHOOK_SECRET}\" } (or any other auth it checks)", o.Target)
		}
	}
	t.done()
	return o
}

func (p *parser) transforms(t *table) Transforms {
	// An explicit cache_dir = "" turns the compilation cache off, so the
	// default applies only when the key is absent.
	dir := DefaultCacheDir
	if t.has("cache_dir") {
		dir = t.str("cache_dir", "")
	}
	tr := Transforms{CacheDir: p.resolve(dir)}
	t.done()
	return tr
}

func (p *parser) log(t *table) Log {
	l := Log{
		Level:  t.str("level", DefaultLogLevel),
		Format: t.str("format", DefaultLogFormat),
		Access: t.boolean("access", false),
	}
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		t.errf("level", "%q is not a log level (use debug, info, warn or error)", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		t.errf("format", "%q is not a log format (use text or json)", l.Format)
	}
	t.done()
	return l
}

// named starts reading an item of an array of tables: it reads the name
// and points messages at `kind "name"` (or `kind #n` when it has none).
func (p *parser) named(kind string, i int, m map[string]any) (*table, string) {
	t := p.table(fmt.Sprintf("%s #%d", kind, i+1), m)
	name := t.str("name", "")
	_, isStr := m["name"].(string)
	switch {
	case !t.has("name"):
		t.errf("name", "is missing; every [[%s]] needs a name", kind)
	case !isStr:
		// The type is already reported.
	case !validName(name):
		t.errf("name", "%q is not a valid name (use letters, digits, '.', '_' and '-', starting with a letter or digit)", name)
	default:
		t.where = fmt.Sprintf("%s %q", kind, name)
	}
	return t, name
}

func (p *parser) plugin(i int, m map[string]any, checkWasm bool) Plugin {
	t, name := p.named("plugin", i, m)
	pl := Plugin{
		Name:      name,
		Instances: t.intOf("instances", DefaultPluginInstances, 0),
		Timeout:   t.positive("timeout", DefaultPluginTimeout),
		MaxMemory: t.bytes("max_memory", DefaultPluginMaxMemory, maxWasmMemory),
		MaxOutput: t.bytes("max_output", DefaultPluginMaxOutput, math.MaxInt32),
	}
	if t.has("start_timeout") {
		pl.StartTimeout = t.positive("start_timeout", 0)
	}
	// Memory is granted in whole pages; round up so the limit is exact.
	pl.MaxMemory = (pl.MaxMemory + wasmPageSize - 1) / wasmPageSize * wasmPageSize
	wasm := t.str("wasm", "")
	switch {
	case !t.has("wasm"):
		t.errf("wasm", "is missing (e.g. wasm = \"plugins/bin/%s.wasm\")", exampleName(name))
	case wasm == "":
		t.errf("wasm", "must not be empty")
	default:
		pl.Wasm = p.resolve(wasm)
		if checkWasm {
			checkFile(t, wasm, pl.Wasm)
		}
	}
	t.done()
	return pl
}

func checkFile(t *table, written, resolved string) {
	fi, err := os.Stat(resolved)
	shown := resolved
	if abs, aerr := filepath.Abs(resolved); aerr == nil {
		shown = abs
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.p.addf("%s: wasm %q: file %s does not exist; run \"make plugins\" to build the stock plugins", t.where, written, shown)
	case err != nil:
		t.p.addf("%s: wasm %q: cannot read %s: %v", t.where, written, shown, cause(err))
	case fi.IsDir():
		t.p.addf("%s: wasm %q: %s is a directory, not a .wasm file", t.where, written, shown)
	}
}

func (p *parser) route(i int, m map[string]any, serverMaxBody int64) Route {
	t, name := p.named("route", i, m)
	r := Route{
		Name:    name,
		Method:  strings.ToUpper(t.str("method", DefaultRouteMethod)),
		Path:    t.str("path", ""),
		Mode:    t.str("mode", DefaultRouteMode),
		Targets: t.strs("targets"),
		MaxBody: t.size("max_body", 0),
		JSON:    t.boolean("json", DefaultRouteJSON),
		Delay:   t.duration("delay", 0),
	}
	switch {
	case r.MaxBody == 0:
		r.MaxBody = serverMaxBody
	case r.MaxBody > math.MaxInt32:
		t.errf("max_body", "%d bytes is too large (at most %d)", r.MaxBody, math.MaxInt32)
		r.MaxBody = serverMaxBody
	}
	if !validMethod(r.Method) {
		t.errf("method", "%q is not an HTTP method (use %s)", r.Method, methodList)
	}
	switch {
	case !t.has("path"):
		t.errf("path", "is missing (e.g. path = \"/hooks/%s\")", exampleName(name))
	default:
		if msg := pathProblem(r.Path); msg != "" {
			t.errf("path", "%q %s", r.Path, msg)
		}
	}
	switch r.Mode {
	case ModeAsync:
	case ModeSync:
		if r.Delay > 0 {
			t.errf("delay", "is not allowed on a sync route: the sender waits for the answer; use mode = \"async\" or remove delay")
		}
	default:
		t.errf("mode", "%q is not a mode (use \"async\": queue and answer 202, or \"sync\": forward now and answer with the target's reply)", r.Mode)
	}
	seen := map[string]bool{}
	for _, tg := range r.Targets {
		if seen[tg] {
			t.errf("targets", "%q is listed twice", tg)
		}
		seen[tg] = true
	}
	for j, sm := range t.list("transforms", `{ plugin = "filter", config = { ... } }`) {
		if sm != nil {
			r.Transforms = append(r.Transforms, p.step(t.where, j, sm))
		}
	}
	if t.has("verify") {
		r.Verify = p.verify(t.sub("verify"))
	}
	if t.has("dedupe") {
		r.Dedupe = p.dedupe(t.sub("dedupe"), r.JSON)
	} else if r.Verify != nil && r.Verify.Type == verify.TypeStandardWebhooks {
		r.Dedupe = &Dedupe{
			Header:     DefaultStandardWebhooksDedupeHeader,
			Fallback:   DefaultSvixDedupeHeader,
			TTL:        2 * r.Verify.Tolerance,
			MaxEntries: DefaultDedupeMaxEntries,
		}
	}
	t.done()
	if len(r.Targets) == 0 && len(r.Transforms) == 0 {
		t.p.addf("%s: has no targets and no transforms; add targets = [\"...\"] naming a [[target]]", t.where)
	}
	return r
}

func (p *parser) step(route string, j int, m map[string]any) Step {
	t := p.table(fmt.Sprintf("%s: transforms[%d]", route, j), m)
	s := Step{Plugin: t.str("plugin", ""), Config: []byte("{}")}
	if !t.has("plugin") {
		t.errf("plugin", "is missing; name a [[plugin]], e.g. { plugin = \"filter\", config = { ... } }")
	}
	if v, ok := t.get("config"); ok {
		if cm, isTable := v.(map[string]any); !isTable {
			t.errf("config", "must be a table like { key = \"value\" }, not %s", typeName(v))
		} else if b, ok := p.stepConfig(t.at("config"), cm); ok {
			s.Config = b
		}
	}
	t.done()
	return s
}

// stepConfig encodes a step's config table as JSON for the guest. Maps
// encode with sorted keys, so the same table always gives the same bytes
// (plugins may cache their parsed config by those bytes).
func (p *parser) stepConfig(where string, m map[string]any) ([]byte, bool) {
	v, ok := p.jsonValue(where, m)
	if !ok {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // templates hold <, > and & as they are
	if err := enc.Encode(v); err != nil {
		p.addf("%s: cannot be encoded as JSON: %v", where, err)
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// jsonValue turns a decoded TOML value into one encoding/json accepts:
// strings get `${env:NAME}` resolved, datetimes become their TOML text.
func (p *parser) jsonValue(where string, v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return p.expand(where, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			p.addf("%s: %v cannot be passed to a plugin (JSON has no nan or inf)", where, x)
			return nil, false
		}
		return x, true
	case time.Time:
		switch x.Location().String() {
		case "date-local":
			return x.Format("2006-01-02"), true
		case "time-local":
			return x.Format("15:04:05.999999999"), true
		case "datetime-local":
			return x.Format("2006-01-02T15:04:05.999999999"), true
		}
		return x.Format(time.RFC3339Nano), true
	case map[string]any:
		out := make(map[string]any, len(x))
		ok := true
		for _, k := range slices.Sorted(maps.Keys(x)) { // sorted: problems come out in a stable order
			var eok bool
			out[k], eok = p.jsonValue(where+"."+keyText(k), x[k])
			ok = ok && eok
		}
		return out, ok
	case []map[string]any:
		out := make([]any, len(x))
		ok := true
		for i, e := range x {
			var eok bool
			out[i], eok = p.jsonValue(where+"["+strconv.Itoa(i)+"]", e)
			ok = ok && eok
		}
		return out, ok
	case []any:
		out := make([]any, len(x))
		ok := true
		for i, e := range x {
			var eok bool
			out[i], eok = p.jsonValue(where+"["+strconv.Itoa(i)+"]", e)
			ok = ok && eok
		}
		return out, ok
	}
	return v, true // int64, bool
}

// keyText writes a TOML key as the file would: bare when it can be.
func keyText(k string) string {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// methodList is what validMethod accepts, for messages.
const methodList = "GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// pathProblem says what is wrong with a route path, or "".
func pathProblem(path string) string {
	switch {
	case !strings.HasPrefix(path, "/"):
		return "must start with \"/\""
	case strings.ContainsAny(path, "?#"):
		return "must not hold a query or fragment (match the path only)"
	case strings.Contains(strings.TrimSuffix(path, "/*"), "*"):
		return "may hold \"*\" only as a final \"/*\" (prefix match)"
	}
	for i := 0; i < len(path); i++ {
		if path[i] <= ' ' || path[i] == 0x7f {
			return "must not contain spaces or control characters"
		}
	}
	return ""
}

// exampleName is name for use in a suggested value, or a placeholder when
// the name itself is unusable.
func exampleName(name string) string {
	if !validName(name) {
		return "NAME"
	}
	return name
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validListen(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// isLoopback reports whether a listen address accepts local connections
// only. An empty host listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
