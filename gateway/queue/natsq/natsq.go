// Package natsq is hookgate's queue on NATS JetStream: the queue.Engine
// that several gateways share, so they divide the delivery work, survive
// the loss of a machine, and see the same queue figures (issue 13,
// README "Scaling out").
//
// The mapping (names.go has every stream, subject and bucket name):
//
//   - Enqueue publishes each delivery to the work-queue stream, subject
//     S.q.<target>, with Nats-Msg-Id = the delivery id, the deliveries of
//     one call as one atomic batch (all stored or none), and returns nil
//     once the stream acknowledged them (with its replicas): a publish
//     repeated after a crash falls in the stream's duplicate window and is
//     dropped. The body is the Pebble store's record (queue.AppendRecord);
//     headers carry the enqueue time, the not-before time and the replay
//     generation. The stream's MaxMsgs and MaxBytes are the [queue] budget
//     with DiscardNew: its refusal is queue.ErrFull (ingest: 503 and
//     Retry-After).
//   - Each target has one durable pull consumer shared by every gateway, so
//     a message is held by one gateway at a time. Claim fetches without
//     waiting; Ref names that one claim (a message claimed again gets a new
//     one, so a worker whose lease ran out cannot end the next holder's
//     claim). A message whose not-before is
//     still ahead is put back with NakWithDelay and not returned, so it is
//     never sent early, by any gateway.
//   - The lease is the consumer's AckWait (Options.AckWait, 30 s). A
//     goroutine sends InProgress for held messages every half AckWait, up to
//     Claim's leaseFor: a long attempt keeps its lease, a gateway that dies
//     loses it within AckWait, and a worker that never finishes loses it
//     after leaseFor.
//   - Ack is a synchronous ack; Retry records the attempt in the S_attempts
//     bucket, then NakWithDelay(due - now); Release is Nak (no attempt);
//     Dead publishes the delivery and its attempts to the S_dead stream,
//     then acks. Leased.Attempts is the number of attempts recorded, not of
//     redeliveries: a lease that ran out, a Release or a not-before Nak
//     does not count.
//   - Target state (dispatch's failure clock and switch) lives in the
//     S_state bucket.
//
// # Differences from the Pebble store
//
//   - Ordered (fifo) deliveries go on their key's subject, S.q.<target>.<key>,
//     and only a key's head (its first stored message) is handed out; a
//     gateway holds the rest until their turn (fifo.go). Costlier than on
//     Pebble: a get per ordered delivery.
//   - NextDue knows only the not-before and retry times this gateway saw.
//   - Stats' Bytes is an estimate (see stats.go).
package natsq

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Options configure an Engine beyond [queue.nats].
type Options struct {
	MaxDepth int   // [queue] max_depth: the stream's MaxMsgs; 0 unlimited
	MaxBytes int64 // [queue] max_bytes: the stream's MaxBytes; 0 unlimited
	Logger   *slog.Logger

	// AckWait is the lease a gateway holds on a claimed message before
	// another gateway may take it, unless renewed (InProgress). 0: 30 s.
	// A dead gateway's deliveries come back after at most this long.
	AckWait time.Duration
	// Timeout bounds each request to the servers (an Enqueue's wait for its
	// acknowledgements included). 0: 5 s.
	Timeout time.Duration
	// ConnectTimeout bounds the first connection at Open. 0: 5 s.
	ConnectTimeout time.Duration
	// Duplicates is the stream's duplicate window. 0: 2 minutes.
	Duplicates time.Duration
	// Visitor opens the queue for a tool (hookgate replay) rather than a
	// gateway: no heartbeat, so the gateways do not count it when they
	// divide rate limits, and no wakes.
	Visitor bool
	// SetupWait bounds how long Open waits for a cluster that cannot
	// serve yet (see setup). 0: 6 Timeouts for a gateway, 2 for a
	// visitor (a command should fail fast).
	SetupWait time.Duration
}

const (
	defaultAckWait    = 30 * time.Second
	defaultTimeout    = 5 * time.Second
	defaultDuplicates = 2 * time.Minute
	// unlimitedAckPending is the consumers' MaxAckPending: no limit. A
	// delivery waiting for its not-before or its retry's backoff is
	// pending an ack on the server (NakWithDelay) until it is due, so any
	// limit would let enough waiting deliveries stall the target's
	// consumer: deliveries due now would not be handed out until those
	// came due. What a gateway holds is bounded by its workers anyway.
	unlimitedAckPending = -1
	// maxPendingPublishes bounds the publishes awaiting their PubAck.
	maxPendingPublishes = 16384
	// claimScan bounds how many messages one Claim fetches while every
	// one it fetched was not due yet (lease.go).
	claimScan = 1024
	// cacheFor is how long Stats, Fill and Health reuse what the servers
	// said: /metrics scrapes and /readyz probes must not hammer them.
	cacheFor = time.Second
	// attemptsMarkerTTL is how long the marker that removing a delivery's
	// attempts leaves in their bucket lives: without a TTL there would be
	// one marker per retried delivery, forever.
	attemptsMarkerTTL = 10 * time.Second
)

// Headers of a work message (beside Nats-Msg-Id).
const (
	hEnqueued = "Hookgate-Enqueued" // unix ns; reset by replay
	hDue      = "Hookgate-Due"      // unix ns: not before; absent when due at once
	hGen      = "Hookgate-Gen"      // replay generation; absent for 0
)

// Engine is the JetStream queue engine. It implements queue.Engine and
// queue.Shared and is safe for concurrent use.
type Engine struct {
	cfg  config.NATS
	opts Options
	log  *slog.Logger
	n    names

	nc       *nats.Conn
	js       jetstream.JetStream
	work     jetstream.Stream
	dead     jetstream.Stream
	attempts jetstream.KeyValue
	state    jetstream.KeyValue
	presence *presence
	dedupe   *Dedupe

	mu        sync.Mutex
	consumers map[string]jetstream.Consumer
	counters  map[string]jetstream.Consumer // dead letters by target (dead.go)
	// leased holds this gateway's claims by Ref. A Ref names one claim,
	// never the message: a message whose lease ran out and came back to
	// this gateway is claimed under a new Ref, so the worker that held it
	// before cannot ack, retry or release the new holder's claim.
	leased  map[queue.Ref]*lease
	claims  uint64 // the last Ref handed out; under mu
	nextDue map[string]int64
	fifo    fifo // ordered deliveries waiting for their turn (fifo.go)

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	cache cache // stats.go
}

// lease is a message this gateway holds.
type lease struct {
	msg     jetstream.Msg
	target  string
	route   string
	id      []byte
	gen     uint64
	enq     int64
	list    []byte // recorded attempts (attempts.go)
	rev     uint64 // their revision in the bucket; 0: none stored
	touched time.Time
	until   time.Time // leaseFor: no InProgress after this
}

// Open connects to cfg's servers, creates or checks the streams and
// buckets, and returns the engine. A server that cannot be reached, a
// refused login or a stream that does not fit fails with a sentence that
// says what to do; no secret is ever in it.
func Open(cfg config.NATS, opts Options) (*Engine, error) {
	return OpenContext(context.Background(), cfg, opts)
}

// OpenContext is Open, stopped early when ctx ends (a signal while the
// gateway starts and waits for its cluster).
func OpenContext(ctx context.Context, cfg config.NATS, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AckWait <= 0 {
		opts.AckWait = defaultAckWait
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultTimeout
	}
	if opts.Duplicates <= 0 {
		opts.Duplicates = defaultDuplicates
	}
	if opts.SetupWait <= 0 {
		opts.SetupWait = 6 * opts.Timeout
		if opts.Visitor {
			opts.SetupWait = 2 * opts.Timeout
		}
	}
	if cfg.Stream == "" {
		cfg.Stream = config.DefaultNATSStream
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{config.DefaultNATSURL}
	}
	e := &Engine{
		cfg: cfg, opts: opts, log: opts.Logger, n: newNames(cfg.Stream),
		consumers: make(map[string]jetstream.Consumer),
		counters:  make(map[string]jetstream.Consumer),
		leased:    make(map[queue.Ref]*lease),
		nextDue:   make(map[string]int64),
		stop:      make(chan struct{}),
	}
	if err := e.connect(); err != nil {
		return nil, err
	}
	if err := e.setup(ctx); err != nil {
		e.nc.Close()
		return nil, err
	}
	e.wg.Add(1)
	go e.keepLeases()
	return e, nil
}

// servers lists cfg's URLs for messages, any user:password in them
// replaced.
func (e *Engine) servers() string {
	out := make([]string, len(e.cfg.URLs))
	for i, s := range e.cfg.URLs {
		out[i] = redactURL(s)
	}
	return strings.Join(out, ", ")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

func (e *Engine) name() string {
	if e.cfg.Name != "" {
		return e.cfg.Name
	}
	host, _ := os.Hostname()
	return "hookgate-" + host + "-" + strconv.Itoa(os.Getpid())
}

func (e *Engine) connect() error {
	o := []nats.Option{
		nats.Name(e.name()),
		nats.Timeout(e.opts.ConnectTimeout),
		// Reconnect forever: a NATS restart or a node lost must not need a
		// gateway restart. Meanwhile Enqueue fails (ingest answers 503).
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// No reconnect buffer: a publish while disconnected fails at once
		// rather than being sent after the sender was answered 503.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !e.closed.Load() {
				e.log.Warn("queue: nats: disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			e.log.Info("queue: nats: reconnected", "server", redactURL(nc.ConnectedUrl()))
		}),
	}
	switch {
	case e.cfg.Token.IsSet():
		o = append(o, nats.Token(e.cfg.Token.Reveal()))
	case e.cfg.User != "":
		o = append(o, nats.UserInfo(e.cfg.User, e.cfg.Password.Reveal()))
	case e.cfg.NKey.IsSet():
		kp, err := nkeys.FromSeed([]byte(e.cfg.NKey.Reveal()))
		if err != nil {
			return fmt.Errorf("queue: nats: nkey %s is not a user seed (SU...): check [queue.nats] nkey", e.cfg.NKey)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return fmt.Errorf("queue: nats: nkey %s is not a user seed (SU...): check [queue.nats] nkey", e.cfg.NKey)
		}
		o = append(o, nats.Nkey(pub, kp.Sign))
	case e.cfg.Creds != "":
		o = append(o, nats.UserCredentials(e.cfg.Creds))
	}
	if e.cfg.TLS.IsSet() || anyTLS(e.cfg.URLs) {
		tc, err := tlsConfig(e.cfg.TLS)
		if err != nil {
			return fmt.Errorf("queue: nats: %w; check [queue.nats] tls", err)
		}
		o = append(o, nats.Secure(tc))
	}
	for i, s := range e.cfg.URLs {
		// nats.Connect would fail with the parser's error, which quotes
		// the whole URL, password included.
		if _, err := url.Parse(s); err != nil {
			return fmt.Errorf("queue: nats: the %s URL of [queue.nats] urls is not a valid URL; write it as nats://host:4222, with any user or password in it percent-encoded ('%%' as %%25)", ordinal(i))
		}
	}
	nc, err := nats.Connect(strings.Join(e.cfg.URLs, ","), o...)
	if err != nil {
		return e.unreachable(err)
	}
	e.nc = nc
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(e.opts.Timeout),
		// Publishes awaiting their PubAck, over all concurrent Enqueue
		// calls; past it a publish stalls, then fails (a 503).
		jetstream.WithPublishAsyncMaxPending(maxPendingPublishes),
		jetstream.WithDefaultTimeout(e.opts.Timeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("queue: nats: %w", err)
	}
	e.js = js
	return nil
}

// ordinal names position i (from 0) of a list in words.
func ordinal(i int) string {
	words := []string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"}
	if i < len(words) {
		return words[i]
	}
	return "number " + strconv.Itoa(i+1)
}

func anyTLS(urls []string) bool {
	for _, u := range urls {
		if strings.HasPrefix(u, "tls://") {
			return true
		}
	}
	return false
}

// unreachable explains a failed first connection. nats.go reports a
// refused or timed-out dial only as "no servers available", so for that
// one a plain TCP dial to each server finds the cause to name.
func (e *Engine) unreachable(err error) error {
	if !errors.Is(err, nats.ErrNoServers) {
		return fmt.Errorf("queue: nats: cannot reach %s: %s", e.servers(), connectAdvice(err))
	}
	var parts []string
	same := ""
	for i, s := range e.cfg.URLs {
		reason := "it accepts connections but did not complete the NATS handshake (is it a NATS client port?)"
		if u, perr := url.Parse(s); perr == nil {
			host := u.Host
			if u.Port() == "" {
				host = net.JoinHostPort(u.Hostname(), "4222")
			}
			c, derr := net.DialTimeout("tcp", host, e.opts.ConnectTimeout)
			if derr != nil {
				reason = dialReason(derr)
			} else {
				c.Close()
			}
		}
		if i == 0 {
			same = reason
		} else if reason != same {
			same = ""
		}
		parts = append(parts, redactURL(s)+" ("+reason+")")
	}
	const check = "; check [queue.nats] urls and that nats-server runs with JetStream (-js)"
	if same != "" {
		return fmt.Errorf("queue: nats: cannot reach %s: %s%s", e.servers(), same, check)
	}
	return fmt.Errorf("queue: nats: cannot reach %s%s", strings.Join(parts, ", "), check)
}

func dialReason(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return "no such host"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer (timeout)"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// connectAdvice is why a connection failed, in a few words, and what to
// check. It keeps the innermost cause ("connection refused"), not the
// dial's internals.
func connectAdvice(err error) string {
	switch {
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(err.Error(), "Authorization Violation"),
		strings.Contains(err.Error(), "authorization violation"):
		return "the server refused the credentials; check [queue.nats] token, user and password, nkey or creds"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error() + "; check [queue.nats] urls and that nats-server runs with JetStream (-js)"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error() + "; check [queue.nats] urls and that nats-server runs with JetStream (-js)"
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ue) || errors.As(err, &he) || strings.Contains(err.Error(), "tls:") {
		return "TLS failed (" + strings.TrimPrefix(err.Error(), "nats: ") + "); check [queue.nats] tls"
	}
	return strings.TrimPrefix(err.Error(), "nats: ") + "; check [queue.nats] urls and that nats-server runs with JetStream (-js)"
}

// tlsConfig builds the client TLS settings from [queue.nats] tls, whose
// files the config loader already read.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	switch t.MinVersion {
	case "", "1.2":
	case "1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls min_version %q is not supported (use 1.2 or 1.3)", t.MinVersion)
	}
	if t.CA.Text != "" {
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM([]byte(t.CA.Text)) {
			return nil, errors.New("tls ca: no certificate in it")
		}
	}
	switch {
	case t.Cert.Text != "" && t.Key.IsSet():
		pair, err := tls.X509KeyPair([]byte(t.Cert.Text), []byte(t.Key.Reveal()))
		if err != nil {
			return nil, errors.New("tls cert and key do not make a key pair")
		}
		c.Certificates = []tls.Certificate{pair}
	case t.Cert.Text != "" || t.Key.IsSet():
		return nil, errors.New("tls needs both cert and key, or neither")
	}
	return c, nil
}

func (e *Engine) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.opts.Timeout)
}

// setup creates or checks the streams and buckets. A cluster that is
// electing a leader, or whose leader has not heard from every node since,
// refuses to place replicas ("no suitable peers for placement, peer
// offline") or drops the request, for a moment: such a setup is tried
// again until Options.SetupWait has passed, so a gateway started with (or
// just after) its NATS cluster waits for it rather than failing. Every
// step is idempotent: a try that timed out after the server created a
// stream finds it the next time.
func (e *Engine) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.SetupWait)
	defer cancel()
	for try := 1; ; try++ {
		err := e.setupOnce(ctx)
		if err == nil || !setupTransient(err) {
			return err
		}
		pause := time.NewTimer(min(time.Duration(try)*250*time.Millisecond, 2*time.Second))
		select {
		case <-ctx.Done():
			pause.Stop()
			return err
		case <-pause.C:
		}
		e.log.Warn("queue: nats: the servers are not ready for hookgate's streams yet; trying again", "try", try, "err", err)
	}
}

// setupTransient reports whether a failed setup may succeed if tried
// again: a timeout, a reconnect under way, or a cluster not ready to
// place or serve streams. "No suitable peers" is transient only when a
// peer is offline: otherwise the cluster is too small for the replicas,
// or short of storage, and waiting will not change that.
func setupTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrReconnectBufExceeded) {
		return true
	}
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.ErrorCode == errCodeClusterNotAvailable ||
		(ae.ErrorCode == errCodeNoPeers && strings.Contains(ae.Description, "peer offline"))
}

// nats-server's error codes for a cluster that cannot place a stream's
// replicas now, and for one with no meta leader.
const (
	errCodeNoPeers             jetstream.ErrorCode = 10005
	errCodeClusterNotAvailable jetstream.ErrorCode = 10008
)

// setupOnce is one try of setup, within ctx. A request the cluster lost
// (sent while it had no leader) is never answered, so a try gets one
// timeout, not more: the next try sends it again.
func (e *Engine) setupOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	maxMsgs, maxBytes := int64(-1), int64(-1)
	if e.opts.MaxDepth > 0 {
		maxMsgs = int64(e.opts.MaxDepth)
	}
	if e.opts.MaxBytes > 0 {
		maxBytes = e.opts.MaxBytes
	}
	var err error
	e.work, err = e.ensureStream(ctx, jetstream.StreamConfig{
		Name:        e.n.work,
		Description: "hookgate deliveries waiting to be sent",
		Subjects:    []string{e.n.workPrefix + ">"}, // S.q.<target>; ordered: S.q.<target>.<key> (fifo.go)
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    e.cfg.Replicas,
		MaxMsgs:     maxMsgs,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardNew,
		Duplicates:  e.opts.Duplicates,
		// An event's deliveries are one atomic batch (enqueue.go).
		AllowAtomicPublish: true,
	})
	if err != nil {
		return err
	}
	if !e.work.CachedInfo().Config.AllowAtomicPublish {
		// A server before 2.12 drops the setting it does not know, and
		// would store an event's deliveries one by one.
		return fmt.Errorf("queue: nats: stream %s: the servers (%s) are older than nats-server 2.12, which hookgate needs (atomic batch publish); upgrade them", e.n.work, e.servers())
	}
	e.dead, err = e.ensureStream(ctx, jetstream.StreamConfig{
		Name:        e.n.dead,
		Description: "hookgate dead letters, kept until replayed",
		Subjects:    []string{e.n.deadPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    e.cfg.Replicas,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardOld,
		Duplicates:  e.opts.Duplicates,
	})
	if err != nil {
		return err
	}
	kv := func(bucket, what string, markerTTL time.Duration) (jetstream.KeyValue, error) {
		b, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucket, Description: what, History: 1,
			Storage: jetstream.FileStorage, Replicas: e.cfg.Replicas,
			LimitMarkerTTL: markerTTL,
		})
		if err != nil {
			return nil, e.setupError("bucket "+bucket, err)
		}
		return b, nil
	}
	if e.attempts, err = kv(e.n.attempts, "hookgate: attempts of pending deliveries", attemptsMarkerTTL); err != nil {
		return err
	}
	if e.state, err = kv(e.n.state, "hookgate: targets' delivery state", 0); err != nil {
		return err
	}
	if !e.opts.Visitor {
		if e.presence, err = newPresence(e.nc, e.js, e.cfg.Stream, e.cfg.Name, e.cfg.Replicas, e.log); err != nil {
			return fmt.Errorf("queue: nats: gateways bucket: %w", err)
		}
	}
	if e.dedupe, err = newDedupe(e.js, e.cfg.Stream, e.cfg.Replicas); err != nil {
		e.presence.close()
		return fmt.Errorf("queue: nats: dedupe bucket: %w", err)
	}
	return nil
}

// causedError is a message for the operator that keeps its cause for
// errors.Is and As (setup's retry asks it) without repeating its text.
type causedError struct {
	msg   string
	cause error
}

func (c *causedError) Error() string { return c.msg }
func (c *causedError) Unwrap() error { return c.cause }

func (e *Engine) setupError(what string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("queue: nats: JetStream is not enabled on %s; run nats-server with JetStream (-js, or jetstream {} in its config) and give this user's account JetStream", e.servers())
	case errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported):
		return fmt.Errorf("queue: nats: %s: the servers (%s) are older than nats-server 2.12, which hookgate needs (per-message TTLs, atomic batch publish); upgrade them", what, e.servers())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &causedError{
			msg:   fmt.Sprintf("queue: nats: %s: the servers (%s) did not answer in time; check that JetStream runs and, in a cluster, that a majority of nodes is up", what, e.servers()),
			cause: err,
		}
	}
	var ae *jetstream.APIError
	switch {
	case errors.As(err, &ae) && ae.ErrorCode == errCodeClusterNotAvailable:
		return &causedError{
			msg:   fmt.Sprintf("queue: nats: %s: the servers (%s) have no JetStream leader now; check that a majority of nodes is up", what, e.servers()),
			cause: err,
		}
	case errors.As(err, &ae) && ae.ErrorCode == errCodeNoPeers && !strings.Contains(ae.Description, "peer offline"):
		return &causedError{
			msg:   fmt.Sprintf("queue: nats: %s: %s; set [queue.nats] replicas to at most the number of JetStream servers, and check that they have the storage [queue] max_bytes asks for", what, ae.Description),
			cause: err,
		}
	case errors.As(err, &ae) && strings.Contains(ae.Description, "replicas"):
		return fmt.Errorf("queue: nats: %s: %s; set [queue.nats] replicas to at most the number of JetStream servers", what, ae.Description)
	}
	return fmt.Errorf("queue: nats: %s: %w", what, err)
}

// ensureStream creates the stream want, or checks the one there: what
// hookgate's semantics rest on (retention, subjects, file storage) must be
// as wanted, or Open fails saying what differs; replicas and limits are
// updated to the configuration.
func (e *Engine) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := e.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = e.js.CreateStream(ctx, want)
		if err != nil {
			return nil, e.setupError("stream "+want.Name, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, e.setupError("stream "+want.Name, err)
	}
	have := s.CachedInfo().Config
	other := func(what string) error {
		return fmt.Errorf("queue: nats: stream %q exists with %s; hookgate needs a stream of its own: set [queue.nats] stream to another name, or remove this one (nats stream rm %s) if nothing in it is needed",
			want.Name, what, want.Name)
	}
	if have.Retention != want.Retention {
		return nil, other(fmt.Sprintf("%s retention, not %s", have.Retention, want.Retention))
	}
	widen := oldWorkSubjects(have.Subjects, want.Subjects) // fifo.go: updated below
	if strings.Join(have.Subjects, " ") != strings.Join(want.Subjects, " ") && !widen {
		return nil, other(fmt.Sprintf("subjects %q, not %q", have.Subjects, want.Subjects))
	}
	if have.Storage != want.Storage {
		return nil, other(fmt.Sprintf("%s storage, not file storage (memory loses everything at a restart)", have.Storage))
	}
	if !widen && have.Replicas == want.Replicas && have.MaxMsgs == want.MaxMsgs && have.MaxBytes == want.MaxBytes &&
		have.Discard == want.Discard && have.Duplicates == want.Duplicates && have.AllowAtomicPublish == want.AllowAtomicPublish {
		return s, nil
	}
	upd := have
	upd.Replicas, upd.MaxMsgs, upd.MaxBytes, upd.Discard, upd.Duplicates = want.Replicas, want.MaxMsgs, want.MaxBytes, want.Discard, want.Duplicates
	upd.AllowAtomicPublish = want.AllowAtomicPublish
	upd.Subjects = want.Subjects
	s, err = e.js.UpdateStream(ctx, upd)
	if err != nil {
		return nil, &causedError{ // the cause: setup tries again if it may pass
			msg: fmt.Sprintf("queue: nats: stream %q has replicas %d, max_msgs %d, max_bytes %d and the configuration asks for %d, %d, %d, but updating it failed (%v); update it by hand (nats stream edit %s) or change [queue] and [queue.nats]",
				want.Name, have.Replicas, have.MaxMsgs, have.MaxBytes, want.Replicas, want.MaxMsgs, want.MaxBytes, err, want.Name),
			cause: err,
		}
	}
	e.log.Info("queue: nats: stream updated to the configuration", "stream", want.Name,
		"replicas", want.Replicas, "max_msgs", want.MaxMsgs, "max_bytes", want.MaxBytes)
	return s, nil
}

// Dedupe is the dedupe key store every gateway on this stream shares
// (gateway.SharedDedupe).
func (e *Engine) Dedupe() *Dedupe { return e.dedupe }

// Notify implements queue.Shared: fn is called when another gateway
// enqueued for a target.
func (e *Engine) Notify(fn func(target string)) { e.presence.notify(fn) }

// Gateways implements queue.Shared: the gateways on this stream now.
func (e *Engine) Gateways() int { return e.presence.gateways() }

// Close stops claiming, gives back what this gateway holds (Nak: another
// gateway takes it at once) and drains the connection.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.stop)
	e.wg.Wait()
	e.mu.Lock()
	held := e.leased
	e.leased = make(map[queue.Ref]*lease)
	e.mu.Unlock()
	for _, l := range held {
		_ = l.msg.Nak()
	}
	e.releaseWaiting()
	e.presence.close()
	done := make(chan struct{})
	e.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := e.nc.Drain(); err != nil {
		e.nc.Close()
		return nil
	}
	select {
	case <-done:
	case <-time.After(e.opts.Timeout):
		e.nc.Close()
	}
	return nil
}

// Health implements queue.Engine: nil while connected and the work stream
// answers; otherwise a short reason for /readyz.
func (e *Engine) Health() error {
	if e.closed.Load() {
		return queue.ErrClosed
	}
	if !e.nc.IsConnected() {
		return errors.New("queue: nats: not connected to any server; reconnecting")
	}
	return e.cache.health(func() error {
		ctx, cancel := e.ctx()
		defer cancel()
		if _, err := e.work.Info(ctx); err != nil {
			return errors.New("queue: nats: the stream does not answer; check that JetStream runs and, in a cluster, that a majority of nodes is up")
		}
		return nil
	})
}
