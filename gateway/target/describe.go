package target

import (
	"strings"

	"github.com/hookgate/hookgate/delivery"
	"github.com/valyala/fasthttp"
)

// What Describe shows in place of values it must not or cannot show.
const (
	// Redacted stands for a credential: an auth header, a configured
	// header or query value given literally (one given as ${env:NAME}
	// shows that reference instead).
	Redacted = "[redacted]"
	// Computed stands for a value computed when the delivery is sent, over
	// the bytes and time of that attempt: signatures and timestamps.
	Computed = "[computed when sent]"
)

// Request is the request Do sends for a delivery, as Describe shows it to
// people (hookgate try, the admin route test, /admin/events): equal to
// what reaches the target but for Redacted and Computed values.
type Request struct {
	Method string
	URL    string   // scheme://host, path and query as sent
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
		URL:    string(req.URI().FullURI()),
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
// shown: these describe the body or the caller's software, not who is
// calling.
func harmless(name string) bool {
	switch strings.ToLower(name) {
	case "content-type", "accept", "user-agent", "content-language":
		return true
	}
	return false
}
