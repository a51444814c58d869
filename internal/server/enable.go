package server

import (
	"errors"
	"net/http"

	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/dispatch"
)

// enableJSON is the answer of POST /admin/targets/{name}/enable.
type enableJSON struct {
	Target      string `json:"target"`
	Enabled     bool   `json:"enabled"`
	WasDisabled bool   `json:"was_disabled"` // false: it was not disabled, and nothing changed
	Pending     int    `json:"pending"`      // deliveries that now go out
}

// enableTarget lifts a target's auto-disable (disable_after): its breaker
// closes, its failure clock starts over, and its kept deliveries drain.
func (s *Server) enableTarget(r *http.Request) (any, error) {
	d, err := s.queued()
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	// Counted before enabling: once enabled, workers start taking them.
	pending := d.Status()[name].Depth
	was, err := d.Enable(name)
	if errors.Is(err, dispatch.ErrUnknownTarget) {
		return nil, admin.Errorf(http.StatusNotFound, "not_found", "target %q is not configured; GET /admin/targets lists the targets", name)
	}
	if err != nil {
		return nil, queueError(err)
	}
	return enableJSON{Target: name, Enabled: true, WasDisabled: was, Pending: pending}, nil
}
