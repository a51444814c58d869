package config

import (
	"net/url"
	"time"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/verify"
)

// Config is a loaded, validated and normalized configuration. Every
// default is filled in and every `${env:NAME}` is resolved, so the rest of
// hookgate never re-checks it. Treat it as immutable: a reload builds a new
// one.
type Config struct {
	Path       string // file it was loaded from, for messages
	Server     Server
	Admin      Admin
	Queue      Queue
	Transforms Transforms
	Log        Log
	Targets    []Target
	Plugins    []Plugin
	Routes     []Route
	Operations Operations

	// Warnings are things that work but deserve a look, such as a
	// credential written into the file instead of `${env:NAME}`.
	// `hookgate check` prints them; they never stop a load.
	Warnings []string
}

// Server is the ingest listener: `[server]`.
type Server struct {
	Listen          string        // listen = "127.0.0.1:8080"
	MaxBody         int64         // max_body = "1MiB": default route body limit, bytes
	MaxHeaderBytes  int           // max_header_bytes = "16KiB"
	ReadTimeout     time.Duration // read_timeout = "10s"
	WriteTimeout    time.Duration // write_timeout = "10s"
	IdleTimeout     time.Duration // idle_timeout = "60s"
	ShutdownTimeout time.Duration // shutdown_timeout = "15s"
	MaxConcurrency  int           // max_concurrency = 4096: in-flight requests before 503
	MaxBodyMemory   int64         // max_body_memory = "256MiB": request bodies held at once before 503
	// per_ip_share = 0.5: the share of max_body_memory and of the open
	// connections one client address may hold, so one sender cannot
	// starve the others; 1 behind a proxy or load balancer, where every
	// sender has its address.
	PerIPShare float64
}

// Admin is the admin listener: `[admin]`.
type Admin struct {
	Listen string // listen = "127.0.0.1:8081"; "" disables the admin listener
	Token  Secret // token = "${env:HOOKGATE_ADMIN_TOKEN}"; bearer token, optional on loopback
}

// Queue is the durable delivery queue: `[queue]`.
type Queue struct {
	Path     string // path = "data/queue"
	Sync     string // sync = "always" | "batch": see QueueSyncAlways/QueueSyncBatch
	MaxDepth int    // max_depth = 1000000: pending deliveries before ingest answers 503
	MaxBytes int64  // max_bytes = "1GiB": pending payload bytes before ingest answers 503
	Workers  int    // workers = 0: delivery workers per target; 0 means the target's max_conns
	// min_free = "0": free disk space the queue keeps; below it ingest
	// answers 503 queue_unavailable and /readyz is not ready. 0 means
	// 256MiB, at most a quarter of the disk (queue.DefaultMinFree).
	MinFree int64
	// backend = "pebble" | "nats": where deliveries wait. "pebble" (the
	// default) is the embedded store at Path; "nats" is a NATS JetStream
	// stream shared by every gateway configured with it ([queue.nats]).
	Backend string
	NATS    NATS // [queue.nats]: read when Backend is "nats"
}

// Queue backends.
const (
	QueueBackendPebble = "pebble"
	QueueBackendNATS   = "nats"
)

// NATS is the JetStream queue backend: `[queue.nats]`. Every gateway
// configured with the same servers and stream shares the deliveries, the
// dead letters and the dedupe keys (README "Scaling out").
type NATS struct {
	URLs     []string // urls = ["nats://127.0.0.1:4222"]: one or more servers of a cluster
	Stream   string   // stream = "hookgate": created if missing, checked if present; names the other streams and buckets too
	Replicas int      // replicas = 1: copies of every message, 1..5 (3 in a 3-node cluster)
	// Credentials: at most one of token, user/password, nkey (a seed) and
	// creds (a JWT credentials file); each may come from ${env:NAME}.
	Token    Secret // token = "${env:NATS_TOKEN}"
	User     string // user = "hookgate"
	Password Secret // password = "${env:NATS_PASSWORD}"
	NKey     Secret // nkey = "${env:NATS_NKEY_SEED}": a user seed (SU...)
	Creds    string // creds = "nats/hookgate.creds": a credentials file, relative to the config file
	TLS      TLS    // tls = { ca, cert, key, server_name, min_version }
	// name = "": this gateway's name among those sharing the stream, in
	// logs and for dividing rate limits; "" is the host name and process id.
	Name string
	// lease = "30s": how long a gateway holds a delivery it took before
	// another may take it, unless the attempt is still running (then it is
	// renewed); also how soon a gateway that died hands its deliveries on.
	Lease time.Duration
}

const (
	// QueueSyncAlways fsyncs each acknowledged write before the 202.
	// Concurrent writes share one fsync (group commit).
	QueueSyncAlways = "always"
	// QueueSyncBatch lets the store hold an event in memory for 10-20 ms,
	// write it then unless its deliveries were made, and fsync its log
	// 30 ms after a write: a crash or power loss can lose about the last
	// 50 ms of acknowledged events, in exchange for much higher ingest
	// throughput.
	QueueSyncBatch = "batch"
)

// Transforms configures the WASM host: `[transforms]`.
type Transforms struct {
	CacheDir string // cache_dir = "data/wasm-cache": wazero compilation cache; "" disables
}

// Log configures logging: `[log]`.
type Log struct {
	Level  string // level = "info" | "debug" | "warn" | "error"
	Format string // format = "text" | "json"
	Access bool   // access = false: one line per request when true
}

// Target is an outgoing destination: `[[target]]`.
type Target struct {
	Name            string
	URL             *url.URL          // url = "http://127.0.0.1:9000/crm"; scheme http or https
	Shown           ShownURL          // URL as it may be printed, secrets redacted: print this (or PrintableURL), never URL
	Method          string            // method = "POST"
	Headers         map[string]Secret // headers = { "Content-Type" = "application/json" }; values may be secrets
	Query           map[string]Secret // query = { apiToken = "${env:SURVEYLAB_TOKEN}" }; values may be secrets
	Timeout         time.Duration     // timeout = "10s": whole attempt
	MaxConns        int               // max_conns = 64
	MaxResponseSize int               // max_response_size = "1MiB"
	IdleTimeout     time.Duration     // idle_timeout = "60s": pooled keep-alive connections
	IDHeader        string            // id_header = "Idempotency-Key": carries the delivery id; "" disables
	Auth            Auth              // auth = { type = "hmac", secret = "...", header = "X-Signature" }
	Retry           Retry             // retry = { ... }
	Success         Success           // success = { ... }
	RateLimit       float64           // rate_limit = 50.0: deliveries per second; 0 = unlimited
	Burst           int               // burst = 10
	Breaker         Breaker           // breaker = { failures = 5, cooldown = "30s" }
	TLS             TLS               // tls = { ca = "certs/crm-ca.pem", cert = "...", key = "${env:CRM_CLIENT_KEY}" }: https only
	// disable_after = "0s": after this long failing without one success
	// (transport errors and retryable statuses, as the breaker counts
	// them) the target is disabled: its deliveries are kept and not
	// attempted until POST /admin/targets/{name}/enable or a reload that
	// changes the target. 0 never disables.
	DisableAfter time.Duration
	// pipeline = 0: with N > 0, requests to the target are pipelined
	// (HTTP/1.1) over N connections: several go out in one write and
	// their answers come back in one read, in order, instead of one
	// request per connection at a time. 0 (the default) does not pipeline.
	// For targets known to answer pipelined requests in order and
	// promptly: a slow answer holds up the ones behind it on its
	// connection. Requests on a connection that is lost are sent once
	// more at once, unpipelined (gateway/target/pipeline.go).
	Pipeline int
	// order = "fifo": deliveries with the same key are attempted one at a
	// time, in ingest order, and one that fails holds up only its own key
	// until it is delivered or dead-lettered (OrderFIFO). "" (the
	// default): no order. Needs the pebble queue backend.
	Order string
	// order_key = "entry.customer.uid": with order = "fifo", a gjson path
	// into each delivery's body whose value is its key. "" (the default):
	// the whole target is one sequence. Bodies with no value there
	// (missing, null, "", or not JSON) share one sequence of their own.
	OrderKey string
}

// Auth types for Target.Auth.Type.
const (
	AuthNone             = "none"
	AuthBasic            = "basic"             // username, password
	AuthBearer           = "bearer"            // token
	AuthHeader           = "header"            // header, value: an API key in a header
	AuthHMAC             = "hmac"              // secret, header (default "X-Hookgate-Signature"), prefix: hex HMAC-SHA256 of the body
	AuthStandardWebhooks = "standard-webhooks" // secret "whsec_...": webhook-id, webhook-timestamp, webhook-signature
	AuthOAuth2           = "oauth2"            // token_url, client_id, client_secret, scopes, audience, auth_style: a client-credentials token, cached, as "Authorization: Bearer ..."
)

// OAuth2 auth_style values: how the client authenticates to the token
// endpoint (RFC 6749 section 2.3.1).
const (
	OAuth2StyleHeader = "header" // HTTP Basic with the form-encoded client_id and client_secret (every server must accept it)
	OAuth2StyleBody   = "body"   // client_id and client_secret as form fields of the token request
)

// Auth is outbound authentication for a target.
type Auth struct {
	Type     string
	Username string
	Password Secret
	Token    Secret
	Header   string
	Value    Secret
	Secret   Secret
	Prefix   string // hmac: written before the hex digest, e.g. "sha256="

	// oauth2: the client credentials grant (RFC 6749 section 4.4).
	TokenURL      *url.URL // token_url = "https://idp.example.com/oauth2/token"
	TokenURLShown ShownURL // token_url as it may be printed: print this, never TokenURL
	ClientID      string   // client_id = "hookgate"
	ClientSecret  Secret   // client_secret = "${env:CRM_CLIENT_SECRET}"
	Scopes        []string // scopes = ["tickets:write"]: sent space-separated; none: no scope parameter
	Audience      string   // audience = "https://api.example.com": sent when set (Auth0, Okta)
	AuthStyle     string   // auth_style = "header" | "body": see OAuth2StyleHeader
}

// TLS is how a target's https connections are made: `tls = { ... }`. The
// loader reads each file (or the PEM text an `${env:NAME}` holds) and checks
// it, so a reload picks up renewed certificates and a bad one is a config
// error naming the file. With oauth2, the token endpoint is reached with
// the same client certificate, trusting the system's roots and CA.
type TLS struct {
	CA                 PEM    // ca = "certs/crm-ca.pem": the only CAs trusted for the target's certificate; empty: the system's roots
	Cert               PEM    // cert = "certs/hookgate.pem": client certificate chain presented to the target (mutual TLS)
	Key                Secret // key = "${env:CRM_CLIENT_KEY}": PEM private key of Cert; prints as where it came from
	ServerName         string // server_name = "crm.internal": the name the target's certificate must carry (and SNI); default the URL's host
	MinVersion         string // min_version = "1.2" | "1.3"
	InsecureSkipVerify bool   // insecure_skip_verify = false: true accepts any certificate (never for production)
}

// IsSet reports whether the tls table set anything.
func (t *TLS) IsSet() bool {
	return t.CA.Text != "" || t.Cert.Text != "" || t.Key.IsSet() || t.ServerName != "" ||
		(t.MinVersion != "" && t.MinVersion != DefaultTLSMinVersion) || t.InsecureSkipVerify
}

// PEM is PEM text read from a file or an environment variable.
type PEM struct {
	Text string // the PEM blocks
	From string // where it came from, for messages: the file as written, or "${env:NAME}"
}

// Retry is a target's retry policy.
type Retry struct {
	MaxAttempts int           // max_attempts = 10 (including the first)
	Initial     time.Duration // initial = "1s"
	Max         time.Duration // max = "10m"
	MaxAge      time.Duration // max_age = "72h": give up after this long since ingest
	Jitter      float64       // jitter = 0.2: +/- fraction of each interval
}

// Success says how a target's answer is judged.
type Success struct {
	Status        []int  // status = [200, 201]; empty means any 2xx
	JSONPath      string // json_path = "status": a dotted path in the JSON answer
	JSONEquals    string // json_equals = "true": the raw JSON value that means success
	RetryOnFailed bool   // retry_body_failure = false: retry when the status is fine but the body check fails
}

// Breaker is a target's circuit breaker.
type Breaker struct {
	Failures int           // failures = 5 consecutive failures open it; 0 disables
	Cooldown time.Duration // cooldown = "30s" before a half-open probe
}

// Operations is where hookgate sends webhooks about itself:
// `[operations]`. Each event is a delivery to Target, queued, retried and
// signed like any other (with the target's own auth, which must be set).
type Operations struct {
	Target string   // target = "ops": a [[target]]; "" sends no operational events
	Events []string // events = ["delivery.dead", ...]: which to send; default all of OperationEvents
	// high_water = 0.8: queue.high_water is sent when the queue passes
	// this fraction of queue.max_depth or queue.max_bytes, and again only
	// after it went back under half of that.
	HighWater float64
}

// Sends reports whether event is one the operations target gets.
func (o *Operations) Sends(event string) bool {
	return o.Target != "" && contains(o.Events, event)
}

// Operational event types.
const (
	EventDeliveryDead    = "delivery.dead"    // a delivery was given up on: it is a dead letter
	EventTargetDisabled  = "target.disabled"  // a target failed for disable_after and was disabled
	EventTargetRecovered = "target.recovered" // a target whose breaker opened, or that was disabled, delivered again
	EventQueueHighWater  = "queue.high_water" // the queue passed high_water of its budget
)

// OperationEvents are every operational event type, the default of
// operations.events.
var OperationEvents = []string{EventDeliveryDead, EventTargetDisabled, EventTargetRecovered, EventQueueHighWater}

// Plugin is a WASM module: `[[plugin]]`.
type Plugin struct {
	Name      string
	Wasm      string        // wasm = "plugins/bin/filter.wasm", relative to the config file
	Instances int           // instances = 0: pool size; 0 means GOMAXPROCS
	Timeout   time.Duration // timeout = "100ms": wall time per call
	MaxMemory int64         // max_memory = "64MiB": rounded up to 64 KiB pages
	MaxOutput int64         // max_output = "1MiB": bytes a call may produce in all
	// start_timeout = "10s": wall time for a new instance's start (its
	// _initialize, a Go guest's runtime and init functions); 0, the
	// default, means ten timeouts and at least 5s (the host's rule).
	StartTimeout time.Duration
}

// Route modes.
const (
	ModeAsync = "async" // deliveries are queued durably, the sender gets 202 {"event_id"}
	ModeSync  = "sync"  // deliveries are sent now, the sender gets the first target's answer
)

// Route binds a method and path to targets: `[[route]]`.
type Route struct {
	Name       string
	Method     string        // method = "POST"
	Path       string        // path = "/hooks/howxm"; a trailing "/*" matches the prefix
	Mode       string        // mode = "async" (default) | "sync"
	Targets    []string      // targets = ["crm"]
	MaxBody    int64         // max_body = "256KiB"; 0 means server.max_body
	JSON       bool          // json = true: the body must be valid JSON (400 otherwise)
	Delay      time.Duration // delay = "0s": not-before for every delivery (seed 003 send time)
	Transforms []Step        // transforms = [{ plugin = "filter", config = { ... } }]
	Verify     *Verify       // verify = { type = "hmac", secrets = ["${env:NAME}"], ... }; nil: none
	Dedupe     *Dedupe       // dedupe = { header = "webhook-id", ttl = "24h" }; nil: none
}

// Verify is a route's inbound verification: who may send to it. The
// verify package does the checking; see its documentation for each type.
// Defaults are filled in for the keys the type uses (header, algorithm,
// encoding, tolerance), so what is shown is what is checked.
type Verify struct {
	Type      string        // type = "hmac" | "timestamped" | "standard-webhooks" | "basic" | "token"; "" = allow_ips only
	Secrets   []Secret      // secrets = ["${env:NEW}", "${env:OLD}"]: every secret accepted now (rotation)
	Header    string        // header = "X-Hub-Signature-256": hmac, timestamped, token
	Query     string        // query = "token": token in a query parameter instead of a header
	Prefix    string        // prefix = "sha256=": hmac and token (e.g. "Bearer ")
	Algorithm string        // algorithm = "sha256" | "sha1" | "sha512": hmac
	Encoding  string        // encoding = "hex" | "base64": hmac
	Tolerance time.Duration // tolerance = "5m": timestamped, standard-webhooks
	Username  string        // username = "howxm": basic
	AllowIPs  []string      // allow_ips = ["10.0.0.0/8", "192.0.2.7"]: the sender's address must be in one; any type
}

// Spec is the verify.Spec of v, secrets revealed: call it only to build
// the verifier, and never print the result field by field.
func (v *Verify) Spec() verify.Spec {
	s := verify.Spec{
		Type: v.Type, Header: v.Header, Query: v.Query, Prefix: v.Prefix, Algorithm: v.Algorithm,
		Encoding: v.Encoding, Tolerance: v.Tolerance, Username: v.Username, AllowIPs: v.AllowIPs,
	}
	for _, sec := range v.Secrets {
		s.Secrets = append(s.Secrets, sec.Reveal())
	}
	return s
}

// Dedupe is a route's duplicate detection: `dedupe = { ... }`. Exactly one
// of Header and JSON names the key. A standard-webhooks route without a
// dedupe table gets header = "webhook-id", fallback = "svix-id" (a Svix
// sender's name for it, read in the order verify picks the family), ttl =
// twice the tolerance: a replayed message id inside the timestamp window
// is a duplicate.
type Dedupe struct {
	Header     string        // header = "Idempotency-Key"
	Fallback   string        // fallback = "svix-id": with header, read when header is absent
	JSON       []string      // json = ["entry.serial_number"]: gjson paths into the body
	TTL        time.Duration // ttl = "24h": how long a key is remembered
	MaxEntries int           // max_entries = 100000: keys remembered at most (oldest forgotten first)
}

// Spec is the dedupe.Spec of d.
func (d *Dedupe) Spec() dedupe.Spec {
	return dedupe.Spec{Header: d.Header, Fallback: d.Fallback, JSON: d.JSON, TTL: d.TTL, MaxEntries: d.MaxEntries}
}

// Step is one link of a route's transform chain.
type Step struct {
	Plugin string
	Config []byte // the step's `config` table, encoded as JSON for the guest
}

// Secret is a string that may hold a credential. It never prints itself:
// String and MarshalText give a redacted form, Reveal gives the value.
type Secret struct {
	value  string
	source string // "${env:NAME}" or "" for a literal
}

// NewSecret wraps a value; source names where it came from, for messages.
func NewSecret(value, source string) Secret { return Secret{value: value, source: source} }

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a value is present.
func (s Secret) IsSet() bool { return s.value != "" }

// String redacts: "${env:NAME}" when it came from the environment, else
// "[redacted]", or "" when empty.
func (s Secret) String() string {
	switch {
	case s.value == "" && s.source == "":
		return ""
	case s.source != "":
		return s.source
	default:
		return "[redacted]"
	}
}

// MarshalText redacts like String, so JSON and logs never carry the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString redacts for %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }
