package server

import (
	"net/http"
	"strconv"

	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/journal"
)

// Limits of GET /admin/events.
const (
	defaultRecentLimit = 100
	maxRecentLimit     = 1000
)

// recent is GET /admin/events?after=ID&limit=N: the journal's events
// recorded after event ID, oldest first (without after: the newest N).
// A reader that passes the last id it saw follows new events; the web
// console's live tail does. An event still being handled has no status
// yet. Delivery URLs are left out (GET /admin/events/{id} shows them).
func (s *Server) recent(r *http.Request) (any, error) {
	q := r.URL.Query()
	limit := defaultRecentLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRecentLimit {
			return nil, admin.Errorf(http.StatusBadRequest, "bad_limit", "limit must be a whole number from 1 to %d", maxRecentLimit)
		}
		limit = n
	}
	evs := s.journal.After(q.Get("after"), limit)
	if evs == nil {
		evs = []journal.Event{}
	}
	return map[string]any{"events": evs}, nil
}
