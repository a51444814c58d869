package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/journal"
)

// Everything the console serves is in the binary: no CDN, no font, no
// build step.
//
//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// examples are the seed payloads (a copy of testdata/, kept equal by
// TestExamplesAreTheSeeds), offered on the test-send page.
//
//go:embed examples/*.json
var examplesFS embed.FS

// pages are the parsed templates by page name: each page is the layout
// with that page's "content".
var pages = parsePages()

var funcs = template.FuncMap{
	"ago":  ago,
	"when": when,
	"seconds": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
	},
	"bytes":    byteSize,
	"join":     strings.Join,
	"outcome":  func(o delivery.AttemptOutcome) string { return o.String() },
	"sortedKV": sortedKV,
	"errorKinds": func(m map[string]int64) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if m[k] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
			}
		}
		return strings.Join(parts, ", ")
	},
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return out
}

// pageData is what every page's template gets; each page fills its part.
type pageData struct {
	Title    string
	Nav      string // the section highlighted in the menu
	Message  string // an error or note for the top of the page
	Flash    string // what the last action did
	CSRF     string
	SignedIn bool // a login exists (admin.token is set): show "Sign out"
	Next     string

	Routes  []admin.RouteInfo
	Targets []targetView
	Plugins []pluginView
	NoQueue bool
	Config  string

	Event  *journal.Event
	Rows   []eventRow
	LookID string

	Dead       []deadView
	DeadNext   string
	Filter     deadFilter
	DeadTotals []targetView // targets with dead letters

	Test testData
}

type deadFilter struct{ Target, Route string }

// Query is the filter as a query string, to come back to the same list.
func (f deadFilter) Query() string {
	q := url.Values{}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	if f.Route != "" {
		q.Set("route", f.Route)
	}
	return q.Encode()
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	t := pages[name]
	if c.token != nil {
		if s := c.sessions.get(sessionID(r)); s != nil {
			d.CSRF, d.SignedIn = s.csrf, true
		}
	} else {
		d.CSRF = c.openCSRF
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", d); err != nil {
		c.log.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "the console could not render this page; see hookgate's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fragment renders one template of page name (not the layout): the parts
// the console's JavaScript swaps in.
func (c *Console) fragment(w http.ResponseWriter, name, tmpl string, d any) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, tmpl, d); err != nil {
		c.log.Error("console: rendering a fragment", "template", tmpl, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal_error", "the console could not render this part; see hookgate's log")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// writeJSONError answers the console's scripts in the admin API's error
// shape.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// writeAPIError answers the console's scripts with an API error as the
// API gave it.
func writeAPIError(w http.ResponseWriter, err error) {
	e := &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error()}
	errors.As(err, &e)
	writeJSONError(w, e.Status, e.Code, e.Message)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// static is GET /ui/static/{file...}: the CSS and JavaScript.
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// overview is GET /ui/: routes, and the live part (targets, plugins).
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Overview", Nav: "overview"}
	rs, err := c.api.routes(r.Context())
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	d.Routes, d.Config = rs.Routes, rs.Config
	if err := c.live(r, &d); err != nil {
		c.apiFailed(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "overview", d)
}

// overviewLive is GET /ui/overview/live: the overview's targets and
// plugins, which its script fetches every two seconds.
func (c *Console) overviewLive(w http.ResponseWriter, r *http.Request) {
	var d pageData
	if err := c.live(r, &d); err != nil {
		writeAPIError(w, err)
		return
	}
	c.fragment(w, "overview", "live", d)
}

func (c *Console) live(r *http.Request, d *pageData) error {
	ts, err := c.api.targets(r.Context())
	if err != nil {
		return err
	}
	rates := c.rates.observe(time.Now())
	d.NoQueue = true
	for i := range ts {
		ts[i].Rate = rates[ts[i].Name]
		if ts[i].Queue != nil {
			d.NoQueue = false
		}
	}
	d.Targets = ts
	d.Plugins, err = c.api.plugins(r.Context())
	return err
}

// apiFailed shows an API error as the page.
func (c *Console) apiFailed(w http.ResponseWriter, r *http.Request, err error) {
	c.render(w, r, errStatus(err), "error", pageData{Title: "Not available", Message: err.Error()})
}

// eventRow is one event in a list (recent events, the live tail).
type eventRow struct {
	ID, Route, Code string
	Status          int
	At              time.Time
	Outcome         string // accepted, dropped, refused, failed
	Note            string // the drop reason or plugin error
	Deliveries      []deliveryState
	More            int // deliveries not listed
}

type deliveryState struct{ Target, State string }

// rowOf summarizes ev for a list.
func rowOf(ev journal.Event) eventRow {
	row := eventRow{ID: ev.ID, Route: ev.Route, Code: ev.Code, Status: ev.Status, Outcome: outcomeOf(ev)}
	if ev.ReceivedAt != nil {
		row.At = *ev.ReceivedAt
	}
	if ch := ev.Chain; ch != nil {
		if ch.PluginError != "" {
			row.Note = ch.PluginError
		} else if ch.Dropped {
			row.Note = ch.DropReason
		}
	}
	for _, dl := range ev.Deliveries {
		row.Deliveries = append(row.Deliveries, deliveryState{Target: dl.Target, State: deliveryStateOf(dl)})
	}
	row.More = ev.DeliveriesTotal - len(ev.Deliveries)
	return row
}

// outcomeOf is the one word the live tail filters on.
func outcomeOf(ev journal.Event) string {
	switch {
	case ev.Status == 0:
		return "in progress"
	case ev.Status >= 500:
		return "failed"
	case ev.Status >= 400:
		return "refused"
	case ev.Chain != nil && ev.Chain.Dropped:
		return "dropped"
	}
	return "accepted"
}

// deliveryStateOf is where a delivery stands: its latest attempt's
// outcome, or "queued" before any.
func deliveryStateOf(d journal.Delivery) string {
	if len(d.Attempts) == 0 {
		return "queued"
	}
	switch a := d.Attempts[len(d.Attempts)-1]; a.Outcome {
	case delivery.AttemptSuccess:
		return "delivered"
	case delivery.AttemptRetry:
		return "retrying"
	case delivery.AttemptDead:
		return "dead"
	default:
		return "failed"
	}
}

// events is GET /ui/events: look an event up by id, or pick a recent one.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/ui/events/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	evs, err := c.api.recent(r.Context(), "", 50)
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	d := pageData{Title: "Events", Nav: "events"}
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		d.Rows = append(d.Rows, rowOf(evs[i]))
	}
	c.render(w, r, http.StatusOK, "events", d)
}

// event is GET /ui/events/{id}: what the sender got, the chain, each
// delivery and its attempts, as GET /admin/events/{id} shows them.
func (c *Console) event(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ev, err := c.api.event(r.Context(), id)
	if err != nil {
		c.render(w, r, errStatus(err), "event", pageData{Title: "Event", Nav: "events", LookID: id, Message: err.Error()})
		return
	}
	c.render(w, r, http.StatusOK, "event", pageData{Title: "Event " + ev.ID, Nav: "events", Event: &ev, LookID: id,
		Rows: []eventRow{rowOf(ev)}})
}

// deadPage is how many dead letters one page lists.
const deadPage = 50

// dead is GET /ui/dead?target=&route=&cursor=.
func (c *Console) dead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := pageData{Title: "Dead letters", Nav: "dead", Filter: deadFilter{Target: q.Get("target"), Route: q.Get("route")}, Flash: flashOf(q)}
	rs, err := c.api.routes(r.Context())
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	d.Routes = rs.Routes
	ts, err := c.api.targets(r.Context())
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	d.Targets = ts
	for _, t := range ts {
		if t.Queue != nil && t.Queue.Dead > 0 {
			d.DeadTotals = append(d.DeadTotals, t)
		}
	}
	d.Dead, d.DeadNext, err = c.api.dead(r.Context(), d.Filter.Target, d.Filter.Route, q.Get("cursor"), deadPage)
	if err != nil {
		d.Message = err.Error()
		c.render(w, r, errStatus(err), "dead", d)
		return
	}
	c.render(w, r, http.StatusOK, "dead", d)
}

// flashOf says what the replay that redirected here did.
func flashOf(q url.Values) string {
	n, err := strconv.Atoi(q.Get("replayed"))
	if err != nil {
		return ""
	}
	msg := fmt.Sprintf("Replayed %d dead letter%s: %s back in the queue.", n, plural(n), map[bool]string{true: "it is", false: "they are"}[n == 1])
	if f, _ := strconv.Atoi(q.Get("failed")); f > 0 {
		msg += fmt.Sprintf(" %d could not be replayed (already replayed, or gone).", f)
	}
	return msg
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// replayOne is POST /ui/dead/{id}/replay.
func (c *Console) replayOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := c.api.replayOne(r.Context(), id)
	c.log.Info("console: replay", "delivery_id", id, "err", err)
	if wantsJSON(r) {
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, map[string]any{"replayed": 1, "id": id})
		return
	}
	c.backToDead(w, r, boolInt(err == nil), boolInt(err != nil))
}

// replayMany is POST /ui/dead/replay: the selected dead letters (id=...),
// or every one of a target (target=NAME, at most limit=N at a time: the
// console's script replays a big backlog in steps and shows progress).
func (c *Console) replayMany(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if target := r.PostForm.Get("target"); target != "" {
		limit, _ := strconv.Atoi(r.PostForm.Get("limit"))
		n, remaining, err := c.api.replayAll(r.Context(), target, limit)
		c.log.Info("console: replay", "target", target, "replayed", n, "remaining", remaining, "err", err)
		if wantsJSON(r) {
			if err != nil {
				writeAPIError(w, err)
				return
			}
			writeJSON(w, map[string]any{"replayed": n, "remaining": remaining})
			return
		}
		if err != nil {
			c.apiFailed(w, r, err)
			return
		}
		c.backToDead(w, r, n, 0)
		return
	}
	ok, failed := 0, 0
	for _, id := range r.PostForm["id"] {
		if err := c.api.replayOne(r.Context(), id); err != nil {
			failed++
			continue
		}
		ok++
	}
	c.log.Info("console: replay", "selected", len(r.PostForm["id"]), "replayed", ok, "failed", failed)
	c.backToDead(w, r, ok, failed)
}

// backToDead answers a form's replay with the dead-letter list it came
// from, saying what was done.
func (c *Console) backToDead(w http.ResponseWriter, r *http.Request, replayed, failed int) {
	q, _ := url.ParseQuery(r.FormValue("back"))
	q.Del("cursor")
	q.Set("replayed", strconv.Itoa(replayed))
	if failed > 0 {
		q.Set("failed", strconv.Itoa(failed))
	}
	http.Redirect(w, r, "/ui/dead?"+q.Encode(), http.StatusSeeOther)
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// testData is the test-send page's form and result.
type testData struct {
	Route       string
	ContentType string
	Headers     string // "Name: value" lines
	Payload     string
	Examples    []string
	Sent        bool // the result is of a real send
	Result      *tryView
	Error       string
}

// maxUpload bounds a test send's form (the payload and the file).
const maxUpload = 10 << 20

func exampleNames() []string {
	names, _ := fs.Glob(examplesFS, "examples/*.json")
	for i := range names {
		names[i] = path.Base(names[i])
	}
	return names
}

// testForm is GET /ui/test?route=&example=.
func (c *Console) testForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := pageData{Title: "Test send", Nav: "test", Test: testData{Route: q.Get("route"), ContentType: "application/json", Examples: exampleNames()}}
	if ex := q.Get("example"); ex != "" {
		b, err := examplesFS.ReadFile("examples/" + path.Base(ex))
		if err != nil {
			d.Message = "There is no example named " + strconv.Quote(ex) + "."
		}
		d.Test.Payload = string(b)
	}
	c.testPage(w, r, http.StatusOK, d)
}

func (c *Console) testPage(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	rs, err := c.api.routes(r.Context())
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	d.Routes = rs.Routes
	if d.Test.Route == "" && len(rs.Routes) > 0 {
		d.Test.Route = rs.Routes[0].Name
	}
	c.render(w, r, status, "test", d)
}

// testSend is POST /ui/test: action=try shows the deliveries the route
// would make, action=send sends them now (POST
// /admin/routes/{name}/test[?send=true]).
func (c *Console) testSend(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Test send", Nav: "test", Test: testData{Examples: exampleNames()}}
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(maxUpload)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		d.Message = "The form could not be read (" + err.Error() + "); a payload may be at most 10 MiB."
		c.testPage(w, r, http.StatusBadRequest, d)
		return
	}
	t := &d.Test
	t.Route, t.ContentType, t.Headers, t.Payload = r.FormValue("route"), r.FormValue("content_type"), r.FormValue("headers"), r.FormValue("payload")
	if f, _, err := r.FormFile("file"); err == nil { // multipart only
		b, err := io.ReadAll(f)
		f.Close()
		if err == nil && len(b) > 0 {
			t.Payload = string(b) // an uploaded file wins over the text box
		}
	}
	header := http.Header{}
	if t.ContentType != "" {
		header.Set("Content-Type", t.ContentType)
	}
	for _, line := range strings.Split(t.Headers, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if k = strings.TrimSpace(k); ok && k != "" {
			header.Add(k, strings.TrimSpace(v))
		}
	}
	t.Sent = r.FormValue("action") == "send"
	res, err := c.api.routeTest(r.Context(), t.Route, header, []byte(t.Payload), t.Sent)
	status := http.StatusOK
	if err != nil {
		t.Error, status = err.Error(), errStatus(err)
	} else {
		t.Result = &res
	}
	if t.Sent {
		c.log.Info("console: test send", "route", t.Route, "err", err)
	}
	c.testPage(w, r, status, d)
}

// tail is GET /ui/tail: the live tail's page; its script opens the stream.
func (c *Console) tail(w http.ResponseWriter, r *http.Request) {
	rs, err := c.api.routes(r.Context())
	if err != nil {
		c.apiFailed(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "tail", pageData{Title: "Live tail", Nav: "tail", Routes: rs.Routes})
}

// Template helpers.

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t).Round(time.Second)
	if d < time.Second {
		return "just now"
	}
	return d.String() + " ago"
}

func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05.000Z")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05.000Z")
	}
	return ""
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func sortedKV(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
