package console

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/gateway/journal"
)

// The live tail follows the recent-events journal through GET
// /admin/events?after=ID, so it costs the request path nothing: no hook,
// no channel, no allocation per request. It polls, which is cheap (one
// short lock when nothing is new).
const (
	tailPoll      = 250 * time.Millisecond
	tailHeartbeat = 10 * time.Second
	// tailStream is how long one stream lasts: under the admin server's
	// write timeout (60 s). The browser reconnects at once with the last
	// event id it saw (Last-Event-ID), so nothing is missed.
	tailStream = 45 * time.Second
	// tailBatch is how many events one poll reads.
	tailBatch = 200
	// tailStuck: an event recorded but not answered after this long (its
	// answer was never recorded) no longer holds back the events after it.
	tailStuck = 30 * time.Second
)

// tailStream is GET /ui/tail/stream: server-sent events, one "row" event
// per event once the sender has its answer, with the event id as the SSE
// id. Without Last-Event-ID (or ?after=ID) it starts with the newest 20.
func (c *Console) tailStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	if after == "" {
		evs, err := c.api.recent(r.Context(), "", 21)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		// Start before the newest 20: they are sent first.
		if len(evs) == 21 {
			after = evs[0].ID
		} else {
			after = "-" // no such event: from the oldest
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	flusher.Flush()

	t := tailer{cursor: after, sent: map[string]bool{}}
	tick := time.NewTicker(tailPoll)
	defer tick.Stop()
	end := time.After(tailStream)
	last := time.Now()
	var buf bytes.Buffer
	for {
		evs, err := c.api.recent(r.Context(), t.cursor, tailBatch)
		if err != nil {
			return
		}
		buf.Reset()
		for _, ev := range t.next(evs, time.Now()) {
			c.writeRow(&buf, ev)
		}
		if buf.Len() == 0 && time.Since(last) >= tailHeartbeat {
			buf.WriteString(": still here\n\n") // a comment: keeps proxies from closing an idle stream
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			flusher.Flush()
			last = time.Now()
		}
		select {
		case <-tick.C:
		case <-end:
			return
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// writeRow writes ev as one SSE "row" event: the table row the page
// inserts, rendered by html/template (every value escaped, so inert).
// Its id is the event id, to resume after. An event's data may span
// lines; each is its own "data:" line, and the browser joins them.
func (c *Console) writeRow(buf *bytes.Buffer, ev journal.Event) {
	var row bytes.Buffer
	if err := pages["tail"].ExecuteTemplate(&row, "row", rowOf(ev)); err != nil {
		c.log.Error("console: rendering a tail row", "err", err)
		return
	}
	fmt.Fprintf(buf, "id: %s\nevent: row\n", strings.ReplaceAll(ev.ID, "\n", ""))
	for _, line := range strings.Split(strings.TrimRight(row.String(), "\n"), "\n") {
		buf.WriteString("data: ")
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}

// tailer decides which journal events a stream sends, in order, each
// once it was answered. cursor is the id of the last event decided (sent
// or skipped); events after it already sent, while an earlier one is
// still being handled, are in sent.
type tailer struct {
	cursor string
	sent   map[string]bool
}

// next takes the events after the cursor (oldest first) and returns
// those to send now, moving the cursor past every event decided.
func (t *tailer) next(evs []journal.Event, now time.Time) []journal.Event {
	var out []journal.Event
	holding := false // an earlier event is still being handled
	for _, ev := range evs {
		done := false
		switch {
		case t.sent[ev.ID]:
			done = true
		case ev.Partial:
			// Known from a delivery attempt only (queued before a restart):
			// it did not arrive now.
			done = true
		case ev.Status != 0:
			out = append(out, ev)
			done = true
		case ev.ReceivedAt == nil || now.Sub(*ev.ReceivedAt) > tailStuck:
			done = true
		}
		if !done {
			holding = true
			continue
		}
		if holding {
			t.sent[ev.ID] = true
		} else {
			delete(t.sent, ev.ID)
			t.cursor = ev.ID
		}
	}
	return out
}
