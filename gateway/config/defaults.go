package config

import (
	"time"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/verify"
)

// Defaults: every value a key takes when the file does not set it. This is
// the one place they live; the sample config.toml and the field comments in
// types.go repeat them for readers.
//
// Route JSON defaults to false: a route accepts any body unless it says
// json = true. Plugins that need JSON fail on their own terms, and a plain
// passthrough route must not start rejecting non-JSON senders because a
// default changed.
const (
	DefaultServerListen    = "127.0.0.1:8080"
	DefaultMaxBody         = 1 << 20  // 1MiB
	DefaultMaxHeaderBytes  = 16 << 10 // 16KiB
	DefaultReadTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultMaxConcurrency  = 4096
	DefaultMaxBodyMemory   = 256 << 20 // 256MiB
	DefaultPerIPShare      = 0.5

	DefaultAdminListen = "127.0.0.1:8081"

	DefaultQueuePath     = "data/queue" // relative to the config file
	DefaultQueueSync     = QueueSyncAlways
	DefaultQueueMaxDepth = 1_000_000
	DefaultQueueMaxBytes = 1 << 30 // 1GiB
	DefaultQueueBackend  = QueueBackendPebble
	DefaultNATSURL       = "nats://127.0.0.1:4222"
	DefaultNATSStream    = "hookgate"
	DefaultNATSReplicas  = 1
	DefaultNATSLease     = 30 * time.Second

	DefaultCacheDir = "data/wasm-cache" // relative to the config file

	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"

	DefaultTargetMethod          = "POST"
	DefaultTargetTimeout         = 10 * time.Second
	DefaultTargetMaxConns        = 64
	DefaultTargetMaxResponseSize = 1 << 20 // 1MiB
	DefaultTargetIdleTimeout     = 60 * time.Second
	DefaultIDHeader              = "Idempotency-Key"
	DefaultAuthType              = AuthNone
	DefaultHMACHeader            = "X-Hookgate-Signature"
	DefaultOAuth2AuthStyle       = OAuth2StyleHeader
	DefaultTLSMinVersion         = "1.2"

	DefaultRetryMaxAttempts = 10
	DefaultRetryInitial     = time.Second
	DefaultRetryMax         = 10 * time.Minute
	DefaultRetryMaxAge      = 72 * time.Hour
	DefaultRetryJitter      = 0.2

	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second

	DefaultDisableAfter = 0 // never: a target is disabled only when disable_after says so

	DefaultOperationsHighWater = 0.8

	DefaultPluginInstances = 0 // 0 = GOMAXPROCS, resolved by the host
	DefaultPluginTimeout   = 100 * time.Millisecond
	DefaultPluginMaxMemory = 64 << 20 // 64MiB
	DefaultPluginMaxOutput = 1 << 20  // 1MiB

	DefaultRouteMethod = "POST"
	DefaultRouteMode   = ModeAsync
	DefaultRouteJSON   = false

	DefaultDedupeTTL        = dedupe.DefaultTTL
	DefaultDedupeMaxEntries = dedupe.DefaultMaxEntries
	// DefaultStandardWebhooksDedupeHeader keys the dedupe a
	// standard-webhooks route gets when it has no dedupe table, or
	// DefaultSvixDedupeHeader when it is absent: the message id of
	// whichever header family verify read, in the order it reads them.
	DefaultStandardWebhooksDedupeHeader = verify.StandardIDHeader
	DefaultSvixDedupeHeader             = verify.SvixIDHeader

	// wasmPageSize is the WebAssembly page; max_memory is rounded up to it.
	wasmPageSize = 64 << 10
	// maxWasmMemory is the 32-bit WebAssembly limit (65536 pages).
	maxWasmMemory = 4 << 30
)
