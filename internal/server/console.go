package server

import (
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/internal/console"
)

// console builds the web console (/ui/ on the admin listener) over the
// admin API's own endpoints, which it calls in-process: it shows and
// does exactly what the JSON API does, redacted the same way.
func (s *Server) console(gw *gateway.Gateway) admin.Router {
	api := append(admin.Describer(gw.Config).Routes(), s.Routes()...)
	s.ui = console.New(console.Options{Token: s.cfg.Admin.Token, API: api, Metrics: s.metrics.Gatherer(), Logger: s.log})
	return s.ui
}
