package target

import (
	"maps"
	"slices"

	"github.com/hookgate/hookgate/delivery"
	"github.com/valyala/fasthttp"
)

// The URL a delivery goes to is printed in two places: Describe (what the
// request will look like) and Error (what failed). Both render it here,
// from the target's config.ShownURL, which the config loader computed once
// from the url as written: whatever came from `${env:NAME}` (a webhook
// secret in the path, a token in the query, a whole URL) shows as that
// reference, and the client's own host, path and query bytes, which hold
// the secret values, are never printed.

// describedURL is the URL Do sends for d as Describe shows it: a query
// key d sets replaces the target's values for it, as on the wire.
func (c *Client) describedURL(d *delivery.Delivery) string {
	return string(c.appendShownURL(nil, d, true))
}

// shownURL is the URL of d as an Error prints it: the target's query pairs
// always show in their redacted form, also where d replaced them, since a
// failure message may be read far from the delivery that explains it; d's
// own other pairs show as sent.
func (c *Client) shownURL(d *delivery.Delivery) string {
	return string(c.appendShownURL(nil, d, false))
}

func (c *Client) appendShownURL(dst []byte, d *delivery.Delivery, sent bool) []byte {
	shown := c.cfg.PrintableURL()
	dst = append(dst, shown.Origin...)
	if len(d.Path) > 0 {
		dst = append(dst, d.Path...) // the delivery's own, sent as given
	} else {
		dst = append(dst, shown.Path...)
	}
	start := len(dst)
	pair := func(key []byte, value string, quote bool) {
		if len(dst) == start {
			dst = append(dst, '?')
		} else {
			dst = append(dst, '&')
		}
		dst = fasthttp.AppendQuotedArg(dst, key)
		dst = append(dst, '=')
		if quote {
			dst = fasthttp.AppendQuotedArg(dst, []byte(value))
		} else {
			dst = append(dst, value...) // a placeholder, unescaped so that it reads as one
		}
	}
	// The URL's own pairs, but those the query table replaces (as New
	// does), then the table's, sorted (as New does).
	for _, q := range shown.Query {
		if _, replaced := c.cfg.Query[q.Key]; replaced || (sent && hasKey(d.Query, []byte(q.Key))) {
			continue
		}
		pair([]byte(q.Key), q.Value, false)
	}
	for _, k := range slices.Sorted(maps.Keys(c.cfg.Query)) {
		if sent && hasKey(d.Query, []byte(k)) {
			continue
		}
		pair([]byte(k), c.cfg.Query[k].String(), false)
	}
	for i := range d.Query {
		if !sent && c.configuresQuery(d.Query[i].Key) {
			continue // the configured value's redacted form is shown instead
		}
		pair(d.Query[i].Key, string(d.Query[i].Value), true)
	}
	return dst
}

// configuresQuery reports whether the target sets query key itself.
func (c *Client) configuresQuery(key []byte) bool {
	if _, ok := c.cfg.Query[string(key)]; ok {
		return true
	}
	for _, q := range c.cfg.PrintableURL().Query {
		if q.Key == string(key) {
			return true
		}
	}
	return false
}
