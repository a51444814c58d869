package target

import (
	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/valyala/fasthttp"
)

// What Describe shows in place of values it must not or cannot show.
const (
	// Redacted stands for a credential: an auth header, a configured
	// header or query value given literally (one given as ${env:NAME}
	// shows that reference instead).
	Redacted = config.Redacted
	// Computed stands for a value computed when the delivery is sent, over
	// the bytes and time of that attempt: signatures and timestamps, and
	// the oauth2 Authorization header (Describe never fetches a token).
	Computed = "[computed when sent]"
)

// Request is the request Do sends for a delivery, as Describe shows it to
// people (hookgate try, the admin route test, /admin/events): equal to
// what reaches the target but for Redacted and Computed values.
type Request struct {
	Method string
	URL    string   // scheme://host, path and query as sent, every part that came from ${env:NAME} shown as the reference
	Header []Header // as sent, framing (Host, Content-Length) left out
	Body   string
}

// Header is one header field of a Request. A name sent more than once
// appears once per value, in the order sent.
type Header struct {
	Name, Value string
}

// Describe renders the request Do would send for d, secrets redacted. It
// builds that request with the code Do uses, sends nothing and may be
// called with any delivery, at any time.
//
// # Notes
//
//   - Header names appear as sent (fasthttp writes them in canonical
//     case: "webhook-id" goes out as "Webhook-Id").
//   - Do adds Host and Content-Length from the URL and the body; Describe
//     leaves them out.
func (c *Client) Describe(d *delivery.Delivery) Request {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	c.build(d, req, true)
	c.auth.apply(req, d, c.now, true)

	out := Request{
		Method: string(req.Header.Method()),
		URL:    c.describedURL(d), // from the target's config.ShownURL, never the bytes sent
		Body:   string(req.Body()),
	}
	for k, v := range req.Header.All() {
		if delivery.EqualFold(k, headerHost) || delivery.EqualFold(k, headerContentLength) {
			continue
		}
		out.Header = append(out.Header, Header{Name: string(k), Value: string(v)})
	}
	return out
}

var (
	headerHost          = []byte("Host")
	headerContentLength = []byte("Content-Length")
)

// harmless reports whether a configured header's literal value may be
// shown: the one rule, config.HarmlessHeader, that GET /admin/routes
// follows too.
func harmless(name string) bool { return config.HarmlessHeader(name) }
