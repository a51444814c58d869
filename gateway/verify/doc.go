// Package verify checks that an incoming webhook really comes from its
// sender before anything else looks at it: a signature over the body, a
// shared credential, and/or the sender's IP address.
//
// A route builds one Verifier at load time and calls Verify for every
// request. Verify allocates nothing in steady state, compares secrets in
// constant time and accepts any of several active secrets, so a secret can
// be rotated without a window of refused events: add the new one, let the
// sender switch, remove the old one.
//
//	v, err := verify.New(verify.Spec{
//		Type:    verify.TypeHMAC,
//		Secrets: []string{os.Getenv("GITHUB_SECRET")},
//		Header:  "X-Hub-Signature-256",
//		Prefix:  "sha256=",
//	})
//	...
//	err = v.Verify(verify.Request{Header: &ctx.Request.Header, Body: body, RemoteIP: ip}, time.Now())
//	var e *verify.Error
//	if errors.As(err, &e) { /* 401 {"error": {"code": e.Reason, "message": e.Advice}} */ }
//
// # Types
//
//   - "hmac": an HMAC of the raw body in one header, optionally after a
//     prefix. algorithm sha256 (default) | sha1 | sha512, encoding hex
//     (default) | base64. GitHub: header "X-Hub-Signature-256", prefix
//     "sha256=". Shopify: header "X-Shopify-Hmac-Sha256", encoding base64.
//     Default header "X-Hookgate-Signature", the header a hookgate target
//     with auth type "hmac" signs, so one gateway can verify another.
//   - "timestamped": Stripe's scheme. Header (default "Stripe-Signature")
//     "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", the hex HMAC-SHA256 of
//     t + "." + body, keyed with the secret as written (whsec_ included).
//   - "standard-webhooks": https://www.standardwebhooks.com. Headers
//     webhook-id, webhook-timestamp, webhook-signature ("v1,<base64>"
//     entries separated by spaces), the HMAC-SHA256 of id "." timestamp
//     "." body, keyed with the base64 after "whsec_". Svix (and senders
//     built on it: Clerk, Resend, ...) sends the same three values as
//     svix-id, svix-timestamp, svix-signature; both families are
//     accepted, as Svix's own libraries do. The family is the one whose
//     id header is present, webhook-id first, and all three headers are
//     read from it.
//   - "basic": HTTP Basic auth; username, and secrets are the passwords.
//   - "token": a shared secret sent as is, in a header (optionally after a
//     prefix such as "Bearer ") or in a query parameter.
//   - "" (none): only allow_ips applies.
//
// allow_ips combines with every type: the remote address must be in one of
// the listed networks, and then the type's check must pass too.
// Timestamps (timestamped, standard-webhooks) are refused when more than
// tolerance (default 5m) away from now, in either direction.
//
// # Configuration
//
// The TOML shape proposed for a route (the config package maps it onto
// Spec; every secret should come from the environment):
//
//	verify = { type = "hmac", secrets = ["${env:GH_NEW}", "${env:GH_OLD}"], header = "X-Hub-Signature-256", prefix = "sha256=", algorithm = "sha256", encoding = "hex" }
//	verify = { type = "hmac", secrets = ["${env:SHOPIFY_SECRET}"], header = "X-Shopify-Hmac-Sha256", encoding = "base64" }
//	verify = { type = "timestamped", secrets = ["${env:STRIPE_WHSEC}"], tolerance = "5m" }
//	verify = { type = "standard-webhooks", secrets = ["${env:WHSEC}"] }
//	verify = { type = "basic", username = "howxm", secrets = ["${env:HOWXM_PASSWORD}"] }
//	verify = { type = "token", header = "X-Api-Key", secrets = ["${env:HOWXM_KEY}"] }
//	verify = { type = "token", query = "token", secrets = ["${env:SURVEY_TOKEN}"] }
//	verify = { allow_ips = ["10.0.0.0/8", "192.0.2.7"] }
//	verify = { type = "hmac", secrets = ["${env:S}"], allow_ips = ["203.0.113.0/24"] }
//
// # Failures
//
// Every failure is an *Error whose Reason is one of the Reason* codes,
// meant for the 401 body and for counters, and whose Advice is the
// sentence for the sender: a wrong secret, a clock that is off (or a
// replay) and an address outside allow_ips each get their own. It says
// which check failed, never which secret was tried or what the expected
// value was.
//
// # Notes
//
//   - Verify reads the body as received: verify before anything decodes,
//     re-encodes or trims it.
//   - RemoteIP must be the TCP peer, or an address taken from a header set
//     by a proxy the operator trusts; never a header the sender controls.
//   - A Spec holds secrets in plain strings; its String and GoString
//     redact them, but do not log its fields one by one.
package verify
