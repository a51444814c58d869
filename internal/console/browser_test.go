package console_test

// The console in a real browser: Debian's chromium, headless, driven by
// chromedp. .ci/tools installs chromium; without it these tests fail and
// say so (they never skip). Each test serves its own hookgate on
// 127.0.0.1 with real targets (internal/sink) and a real queue.
//
// Screenshots at 1280x800 and 390x844 are taken and checked by every run;
// `go test ./internal/console -run Browser -update-screenshots` also
// writes them to docs/ for the README.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console's screenshots to docs/")

// browser is one headless chromium for the whole test binary; each test
// gets a tab in a browser context of its own (its own cookies).
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

func startBrowser() {
	path, err := exec.LookPath("chromium")
	if err != nil {
		browser.err = fmt.Errorf("chromium is not installed: run .ci/tools (as root it installs Debian's chromium package; otherwise it prints the apt-get command)")
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800), chromedp.Flag("hide-scrollbars", true), chromedp.Flag("font-render-hinting", "none"))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run its sandbox as root
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		browser.err = fmt.Errorf("starting chromium: %w", err)
		return
	}
	browser.ctx, browser.cancel = bctx, func() { bcancel(); acancel() }
}

// tab opens a tab of width x height in a fresh browser context.
func tab(t *testing.T, width, height int64) context.Context {
	t.Helper()
	browser.once.Do(startBrowser)
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run opens the tab and must have no deadline of its own.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// do runs steps with a generous deadline (a failure's, not a timing).
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eval runs JavaScript for its effect.
func eval(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate[any](js))
}

// text is the text of the first element matching css.
//
// It reads through JavaScript, polled across page loads like until:
// chromedp's DOM queries use node ids from its copy of the document,
// which a page that has just replaced itself (a replay's redirect) can
// leave stale for a moment ("No node with given id found").
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	expr := `(function () { const e = document.querySelector(` + strconv.Quote(css) + `); return e ? [e.textContent] : []; })()`
	deadline := time.Now().Add(25 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		var got []string
		got, err = chromedp.Run(c, chromedp.Evaluate[[]string](expr))
		cancel()
		if err == nil && len(got) == 1 {
			return strings.TrimSpace(got[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s on the page within 25s (last error: %v)", css, err)
	return ""
}

// until waits until the JavaScript expression is true, across page
// loads (an evaluation during one fails and is tried again).
func until(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(25 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(c, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	page, _ := chromedp.Run(c, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	t.Fatalf("waiting for %s (last error: %v)\npage: %.3000s", expr, err, page)
}

// clickAndLoad clicks the element and waits for the page it leads to:
// the old page's marker is gone and the new one has loaded.
func clickAndLoad(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	eval(t, ctx, `window.__oldPage = true; document.querySelector(`+strconv.Quote(css)+`).click()`)
	until(t, ctx, `window.__oldPage === undefined && document.readyState === "complete"`)
}

// screenshot captures the viewport, checks that something was drawn, and
// with -update-screenshots writes it to docs/console-<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string, width, height int64) {
	t.Helper()
	do(t, ctx, chromedp.EmulateViewport(width, height))
	b := run(t, ctx, chromedp.CaptureScreenshot())
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	checkDrawn(t, name, img, int(width), int(height))
	if !*updateScreenshots {
		return
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console-"+name+".png"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkDrawn fails unless img has the viewport's size and is a rendered
// page: several colours, and a good part of it not background.
func checkDrawn(t *testing.T, name string, img image.Image, width, height int) {
	t.Helper()
	r := img.Bounds()
	if r.Dx() != width || r.Dy() != height {
		t.Fatalf("screenshot %s is %dx%d, want %dx%d", name, r.Dx(), r.Dy(), width, height)
	}
	colours := map[[3]uint32]bool{}
	inked := 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[[3]uint32{cr >> 8, cg >> 8, cb >> 8}] = true
			if cr>>8 < 0xf0 || cg>>8 < 0xf0 || cb>>8 < 0xf0 {
				inked++
			}
		}
	}
	if samples := (r.Dx() / 2) * (r.Dy() / 2); len(colours) < 16 || inked < samples/50 {
		t.Fatalf("screenshot %s looks empty: %d colours, %d of %d samples not background", name, len(colours), inked, samples)
	}
}

// apiJSON GETs an admin API path (no token) and decodes it.
func apiJSON(t *testing.T, h *hookgate, path string, v any) int {
	t.Helper()
	resp, err := http.Get(h.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func deadCount(t *testing.T, h *hookgate) int {
	var v struct {
		Dead []json.RawMessage `json:"dead"`
	}
	apiJSON(t, h, "/admin/dead", &v)
	return len(v.Dead)
}

const overviewConfig = `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[transforms]
cache_dir = "CACHE"

[[target]]
name = "crm"
url = "SINK/crm/tickets"
headers = { "Content-Type" = "application/json" }
auth = { type = "hmac", secret = "console-test-crm-secret-9a1d", header = "X-Hookgate-Signature", prefix = "sha256=" }

[[target]]
name = "billing"
url = "http://DOWN/billing"
retry = { max_attempts = 10, initial = "1m" }

[[plugin]]
name = "howxm-nps"
wasm = "HOWXM_WASM"

[[route]]
name = "howxm"
path = "/hooks/howxm"
json = true
targets = ["crm"]
transforms = [ { plugin = "howxm-nps", config = { max_score = 6, target = "crm" } } ]

[[route]]
name = "orders"
path = "/hooks/orders"
targets = ["billing"]
`

// TestBrowserOverview: the overview lists the config's routes and
// targets, and the queue depth of a failing target rises as events are
// posted, without the page being reloaded.
func TestBrowserOverview(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "DOWN", testport.Addr(t)).Replace(overviewConfig))
	ctx := tab(t, 1280, 800)
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/"))

	for css, want := range map[string][]string{
		"#route-howxm":      {"howxm", "POST /hooks/howxm", "async", "howxm-nps", "crm"},
		"#route-orders":     {"orders", "POST /hooks/orders", "billing"},
		"#target-crm":       {"crm", s.URL() + "/crm/tickets", "closed"},
		"#target-billing":   {"billing", "/billing"},
		"#plugin-howxm-nps": {"howxm-nps"},
	} {
		got := text(t, ctx, css)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s shows %q, want it to hold %q", css, got, w)
			}
		}
	}
	if got := text(t, ctx, "#target-billing .depth"); got != "0" {
		t.Fatalf("billing's queue depth before any event: %q, want 0", got)
	}
	// A marker the page loses if it is reloaded.
	eval(t, ctx, `window.__notReloaded = true; undefined`)
	for i := range 3 {
		if code := h.post(t, "/hooks/orders", fmt.Sprintf(`{"order":%d}`, i), nil); code != http.StatusAccepted {
			t.Fatalf("post %d: %d, want 202", i, code)
		}
	}
	if code := h.post(t, "/hooks/howxm", seed(t, "howxm_low_score.json"), nil); code != http.StatusAccepted {
		t.Fatalf("howxm post: %d, want 202", code)
	}
	until(t, ctx, `document.querySelector("#target-billing .depth").textContent.trim() === "3" && window.__notReloaded === true`)
	// The plugin's call and the CRM's delivery show up the same way.
	until(t, ctx, `document.querySelector("#plugin-howxm-nps td.num").textContent.trim() === "1"`)
	until(t, ctx, `document.querySelector("#target-crm .success").textContent.trim() === "100%"`)
	if _, err := s.Wait(1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "overview-1280", 1280, 800)
	screenshot(t, ctx, "overview-390", 390, 844)

	// Keyboard: the first Tab reaches the skip link, Enter moves to the
	// content; the menu's links follow the brand in order.
	do(t, ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(h.admin+"/ui/"), chromedp.KeyEvent("\t"))
	if got := run(t, ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)); got != "Skip to content" {
		t.Fatalf("the first Tab focuses %q, want the skip link", got)
	}
	do(t, ctx, chromedp.KeyEvent("\r"))
	until(t, ctx, `document.activeElement.id === "main"`)
	eval(t, ctx, `document.querySelector(".skip").focus()`)
	do(t, ctx, chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	if got := run(t, ctx, chromedp.Evaluate[string](`document.activeElement.textContent + " " + getComputedStyle(document.activeElement).outlineStyle`)); got != "Overview solid" {
		t.Fatalf("two Tabs after the skip link focus %q, want the Overview link with a visible outline", got)
	}
}

const deadConfig = `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "flaky"
url = "SINK/flaky?token=console-test-crm-secret-9a1d"
retry = { max_attempts = 1 }

[[route]]
name = "orders"
path = "/hooks/orders"
targets = ["flaky"]
`

// TestBrowserReplayDeadLetters: a dead letter is inspected, its event
// looked up (every attempt shown, the URL redacted as the API redacts
// it), and dead letters replayed from the console reach the target: one
// from its row, one selected, then the rest of the target with progress.
func TestBrowserReplayDeadLetters(t *testing.T) {
	s := startSink(t, sink.Options{Statuses: []int{500, 500, 500, 500}})
	h := start(t, strings.ReplaceAll(deadConfig, "SINK", s.URL()))
	for i := range 4 {
		if code := h.post(t, "/hooks/orders", fmt.Sprintf(`{"order":%d}`, i), nil); code != http.StatusAccepted {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	waitFor(t, "4 dead letters", func() bool { return deadCount(t, h) == 4 })

	ctx := tab(t, 1280, 800)
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/dead?target=flaky"))
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#dead tbody tr[id^=dead-]").length`)); n != 4 {
		t.Fatalf("the dead-letter list shows %d, want 4", n)
	}
	// Inspect one: its body is there.
	do(t, ctx, chromedp.Click(chromedp.CSS("#dead tbody tr:first-child summary")))
	if got := text(t, ctx, "#dead tbody tr:first-child details pre"); !strings.Contains(got, `{"order":`) {
		t.Errorf("the dead letter's body shows %q", got)
	}
	screenshot(t, ctx, "dead-1280", 1280, 800)
	do(t, ctx, chromedp.EmulateViewport(1280, 800))

	// Its event, looked up by id: the sender's answer, the attempt, and
	// the URL exactly as GET /admin/events/{id} shows it.
	evID := text(t, ctx, "#dead tbody tr:first-child dd a")
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/events"), chromedp.SendKeys(chromedp.CSS("#id"), evID))
	clickAndLoad(t, ctx, "form[role=search] button")
	var api struct {
		Deliveries []struct{ URL string }
	}
	apiJSON(t, h, "/admin/events/"+evID, &api)
	if len(api.Deliveries) != 1 || !strings.Contains(api.Deliveries[0].URL, "token=[redacted]") {
		t.Fatalf("the API shows %+v", api)
	}
	page := text(t, ctx, "main")
	for _, w := range []string{evID, "202", "POST " + api.Deliveries[0].URL, "dead", "500", "gave up after 1 attempts"} {
		if !strings.Contains(page, w) {
			t.Errorf("the event page does not show %q:\n%s", w, page)
		}
	}
	if strings.Contains(page, "console-test-crm-secret-9a1d") {
		t.Fatal("the event page shows the target's secret")
	}
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/dead?target=flaky"))

	clickAndLoad(t, ctx, "#dead tbody tr:first-child button.replay-one")
	until(t, ctx, `(document.querySelector(".note.ok") || {}).textContent?.includes("Replayed 1 dead letter")`)
	reqs, err := s.Wait(5, 20*time.Second)
	if err != nil {
		t.Fatalf("the replayed dead letter did not reach the target: %v", err)
	}
	if !strings.HasPrefix(reqs[4].Body, `{"order":`) {
		t.Errorf("the replay sent %q", reqs[4].Body)
	}
	if n := deadCount(t, h); n != 3 {
		t.Fatalf("%d dead letters after replaying one, want 3", n)
	}

	// One selected, with progress.
	eval(t, ctx, `window.__oldPage = true`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`#dead tbody tr:first-child input[type=checkbox]`)),
		chromedp.Click(chromedp.CSS(`#selected p button`)))
	until(t, ctx, `window.__oldPage === undefined && document.readyState === "complete" && location.search.includes("replayed=1") && (document.querySelector(".note.ok") || {}).textContent?.includes("Replayed 1 dead letter")`)
	if _, err := s.Wait(6, 20*time.Second); err != nil {
		t.Fatalf("the selected dead letter did not reach the target: %v", err)
	}
	if n := deadCount(t, h); n != 2 {
		t.Fatalf("%d dead letters after replaying the selected one, want 2", n)
	}

	// The rest of the target, in steps, with progress.
	if got := text(t, ctx, "form[data-replay-all] button"); got != "Replay all 2 of flaky" {
		t.Fatalf("replay-all button says %q", got)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("form[data-replay-all] button")))
	until(t, ctx, `document.readyState === "complete" && location.search.includes("replayed=2") && (document.querySelector(".note.ok") || {}).textContent?.includes("Replayed 2 dead letters")`)
	if _, err := s.Wait(8, 20*time.Second); err != nil {
		t.Fatalf("the replayed dead letters did not all reach the target: %v", err)
	}
	waitFor(t, "no dead letter left", func() bool { return deadCount(t, h) == 0 })
}

const testSendConfig = `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[transforms]
cache_dir = "CACHE"

[[target]]
name = "crm"
url = "SINK/crm/tickets"
headers = { "Content-Type" = "application/json" }
auth = { type = "hmac", secret = "console-test-crm-secret-9a1d", header = "X-Hookgate-Signature", prefix = "sha256=" }

[[plugin]]
name = "howxm-nps"
wasm = "HOWXM_WASM"

[[route]]
name = "howxm"
path = "/hooks/howxm"
mode = "sync"
json = true
targets = ["crm"]
transforms = [ { plugin = "howxm-nps", config = { max_score = 6, target = "crm" } } ]
`

// TestBrowserTestSend: a test send shows the delivery the route would
// make, sends nothing, and sent for real shows the target's answer.
func TestBrowserTestSend(t *testing.T) {
	s := startSink(t, sink.Options{Body: `{"status":true,"notification":"ticket 4711 opened"}`})
	h := start(t, strings.ReplaceAll(testSendConfig, "SINK", s.URL()))
	ctx := tab(t, 1280, 800)

	// A promoter's answer, one of the offered examples: dropped.
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/test?route=howxm&example=howxm_entry_submitted.json"))
	clickAndLoad(t, ctx, "#try")
	if got := text(t, ctx, "#result"); !strings.Contains(got, "dropped") || !strings.Contains(got, "score 10 above max_score 6") {
		t.Fatalf("a promoter's answer: %q, want it dropped", got)
	}

	// A detractor's, uploaded as a file: one ticket for the CRM, not sent.
	upload, err := filepath.Abs(filepath.Join("..", "..", "testdata", "howxm_low_score.json")) // the browser wants an absolute path
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/test?route=howxm"), chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{upload}))
	clickAndLoad(t, ctx, "#try")
	got := text(t, ctx, "#result")
	for _, w := range []string{"Would send", "crm", "POST " + s.URL() + "/crm/tickets", `"score":3`, "[computed when sent]"} {
		if !strings.Contains(got, w) {
			t.Errorf("try shows %q, want it to hold %q", got, w)
		}
	}
	if s.Count() != 0 {
		t.Fatalf("try sent %d requests, want none", s.Count())
	}

	// Sent for real: the target's answer. The payload is now in the text box.
	if v := run(t, ctx, chromedp.Value(chromedp.CSS("#payload"))); !strings.Contains(v, `"serial_number"`) {
		t.Fatalf("the payload box holds %.100q after the upload, want the uploaded payload", v)
	}
	clickAndLoad(t, ctx, "#send")
	if got := text(t, ctx, "#result-h"); !strings.HasPrefix(got, "Sent") {
		t.Errorf("result heading %q, want Sent", got)
	}
	if got := text(t, ctx, ".sent-status"); got != "200" {
		t.Errorf("the target's status shows %q, want 200", got)
	}
	if got := text(t, ctx, ".sent-body"); !strings.Contains(got, "ticket 4711 opened") {
		t.Errorf("the target's answer shows %q", got)
	}
	reqs, err := s.Wait(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reqs[0].Path != "/crm/tickets" || !strings.HasPrefix(reqs[0].Header("X-Hookgate-Signature"), "sha256=") {
		t.Errorf("the CRM got %s %v", reqs[0].Path, reqs[0].Headers)
	}
	eval(t, ctx, `document.getElementById("result").scrollIntoView()`)
	screenshot(t, ctx, "test-send-1280", 1280, 800)
	screenshot(t, ctx, "test-send-390", 390, 844)
}

const adminToken = "console-test-admin-token-5f1c"

const tokenConfig = `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"
token = "TOKEN"

[[target]]
name = "crm"
url = "SINK/crm"

[[route]]
name = "echo"
path = "/hooks/echo"
mode = "sync"
targets = ["crm"]
`

// TestBrowserToken: with admin.token set the console asks for it once,
// refuses a wrong one, never puts it in a URL, keeps an HttpOnly session
// cookie that opens no JSON endpoint, and refuses a state-changing
// request without the page's CSRF token or from another site.
func TestBrowserToken(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "TOKEN", adminToken).Replace(tokenConfig))
	ctx := tab(t, 1280, 800)
	var mu sync.Mutex
	var urls []string // every URL the tab requests
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/dead"))
	if loc := run(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, h.admin+"/ui/login") {
		t.Fatalf("without a session the console went to %s, want the sign-in page", loc)
	}
	// A wrong token is refused.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"))
	clickAndLoad(t, ctx, "form.login button")
	if got := text(t, ctx, ".note.bad"); !strings.Contains(got, "not the admin token") {
		t.Fatalf("a wrong token: %q", got)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#routes").length`)); n != 0 {
		t.Fatal("a wrong token showed the routes")
	}
	// The right one: back where we were going.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#token"), adminToken))
	clickAndLoad(t, ctx, "form.login button")
	if loc := run(t, ctx, chromedp.Location()); loc != h.admin+"/ui/dead" {
		t.Fatalf("after signing in: %s, want %s/ui/dead", loc, h.admin)
	}
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/"))
	if got := text(t, ctx, "#route-echo"); !strings.Contains(got, "/hooks/echo") {
		t.Fatalf("signed in, the overview shows %q", got)
	}
	mu.Lock()
	seen := append([]string(nil), urls...)
	mu.Unlock()
	if len(seen) < 4 {
		t.Fatalf("saw only %d requests of the tab: %v", len(seen), seen)
	}
	for _, u := range seen {
		if strings.Contains(u, adminToken) || strings.Contains(u, url.QueryEscape(adminToken)) {
			t.Fatalf("the token was put in a URL: %s", u)
		}
	}
	cookies := run(t, ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{h.admin + "/ui/"}})
		return r.Cookies, err
	}))
	if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict || cookies[0].Value == adminToken {
		t.Fatalf("session cookie %+v, want one HttpOnly SameSite=Strict cookie that is not the token", cookies)
	}
	// The session opens the console only: the JSON API still wants the token.
	js := func(expr string) int {
		return run(t, ctx, chromedp.Evaluate[int](expr, chromedp.EvalAwaitPromise))
	}
	if st := js(`fetch("/admin/targets").then(r => r.status)`); st != http.StatusUnauthorized {
		t.Errorf("GET /admin/targets with the console's cookie: %d, want 401", st)
	}
	// A test send without the page's CSRF token is refused; with it, it runs.
	send := `fetch("/ui/test", {method: "POST", headers: HDR, body: new URLSearchParams({route: "echo", action: "send", payload: "{}"})}).then(r => r.status)`
	if st := js(strings.Replace(send, "HDR", `{}`, 1)); st != http.StatusForbidden {
		t.Errorf("POST /ui/test without the CSRF token: %d, want 403", st)
	}
	if s.Count() != 0 {
		t.Fatal("a request without the CSRF token was sent to the target")
	}
	if st := js(strings.Replace(send, "HDR", `{"X-Hookgate-CSRF": document.querySelector("meta[name=csrf]").content}`, 1)); st != http.StatusOK {
		t.Errorf("POST /ui/test with the CSRF token: %d, want 200", st)
	}
	waitFor(t, "the test send", func() bool { return s.Count() == 1 })

	// A page on another origin that posts a form to the console (the
	// browser sends the SameSite cookie along: 127.0.0.1 on another port is
	// the same site) is refused, and nothing is sent.
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/ui/test"><input name="route" value="echo"><input name="action" value="send"><input name="payload" value="{}"><button id="go">go</button></form>`, h.admin)
	})}
	eln := listen(t)
	go evil.Serve(eln)
	t.Cleanup(func() { evil.Close() })
	do(t, ctx, chromedp.Navigate("http://"+eln.Addr().String()+"/"))
	clickAndLoad(t, ctx, "#go")
	if got := text(t, ctx, ".note.bad"); !strings.Contains(got, "came from another site") {
		t.Errorf("a cross-site form post: %q", got)
	}
	if s.Count() != 1 {
		t.Fatalf("a cross-site form post reached the target (%d requests)", s.Count())
	}
	// Signing out ends the session.
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/"))
	clickAndLoad(t, ctx, "form.signout button")
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/"))
	if loc := run(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, h.admin+"/ui/login") {
		t.Fatalf("after signing out the console went to %s, want the sign-in page", loc)
	}
}

// hostile is event data that would run script if it were rendered as HTML.
const hostile = `<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">`

// TestBrowserEventDataIsInert: a payload, header, query and target answer
// holding <script> and "><img onerror> are shown as text on every page
// that shows them: no element is made of them and no script runs.
func TestBrowserEventDataIsInert(t *testing.T) {
	s := startSink(t, sink.Options{Statuses: []int{500}, Body: `<img src=x onerror="window.__xss=3">`})
	h := start(t, strings.ReplaceAll(deadConfig, "SINK", s.URL()))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the markup as a sender would send it, not \u003c
	enc.Encode(map[string]string{"note": hostile})
	body := bytes.TrimSpace(buf.Bytes())
	req, _ := http.NewRequest("POST", h.ingest+"/hooks/orders?q="+url.QueryEscape(hostile), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Note", `"><img src=x onerror="window.__xss=4">`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("Hookgate-Event-Id")
	waitFor(t, "the dead letter", func() bool { return deadCount(t, h) == 1 })

	ctx := tab(t, 1280, 800)
	inert := func(page string, wantText ...string) {
		t.Helper()
		// Open every <details>, so what they hold is rendered too.
		eval(t, ctx, `document.querySelectorAll("details").forEach(d => d.open = true); undefined`)
		st := run(t, ctx, chromedp.Evaluate[map[string]any](`({xss: window.__xss === undefined ? 0 : window.__xss, imgs: document.images.length,
			scripts: Array.from(document.scripts).map(s => s.src).join(" "), text: document.body.innerText})`))
		if st["xss"] != float64(0) || st["imgs"] != float64(0) || st["scripts"] != h.admin+"/ui/static/console.js" {
			t.Errorf("%s: script ran or elements were made: xss=%v images=%v scripts=%v", page, st["xss"], st["imgs"], st["scripts"])
		}
		for _, w := range wantText {
			if !strings.Contains(st["text"].(string), w) {
				t.Errorf("%s does not show %q as text", page, w)
			}
		}
	}
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/dead"))
	inert("dead letters", `{"note":"<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">"}`,
		`X-Note: "><img src=x onerror="window.__xss=4">`, `<img src=x onerror="window.__xss=3">`)
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/events/"+id))
	inert("event page", id, "status 500")
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/events/"+url.PathEscape(hostile)))
	inert("event lookup of a hostile id", "<script>window.__xss=1</script>")
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/tail"))
	until(t, ctx, `document.querySelectorAll("#tail tbody tr").length === 1`)
	inert("live tail", id)

	// A test send: the payload in the text box and the delivery, the
	// target's answer in the result.
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/test?route=orders"),
		chromedp.SetValue(chromedp.CSS("#payload"), string(body)))
	clickAndLoad(t, ctx, "#send")
	inert("test send", `<img src=x onerror="window.__xss=3">`)
	if got := run(t, ctx, chromedp.Value(chromedp.CSS("#payload"))); got != string(body) {
		t.Errorf("the payload box holds %q, want %q", got, body)
	}
}

const tailConfig = `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "crm"
url = "SINK/crm"

[[target]]
name = "down"
url = "http://DOWN/x"

[[route]]
name = "orders"
path = "/hooks/orders"
targets = ["crm"]

[[route]]
name = "pass"
path = "/hooks/pass"
mode = "sync"
targets = ["down"]
`

// TestBrowserLiveTail: events appear as they are answered, filtered by
// route and outcome; paused, nothing is added, and on resume what came
// meanwhile arrives.
func TestBrowserLiveTail(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "DOWN", testport.Addr(t)).Replace(tailConfig))
	ctx := tab(t, 1280, 800)
	do(t, ctx, chromedp.Navigate(h.admin+"/ui/tail"))
	until(t, ctx, `document.getElementById("t-state").textContent === "live"`)

	postID := func(path string) string {
		req, _ := http.NewRequest("POST", h.ingest+path, strings.NewReader(`{"n":1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Hookgate-Event-Id")
	}
	row := func(id string) string { return `document.querySelector('#tail a[href="/ui/events/` + id + `"]')` }
	a := postID("/hooks/orders")
	until(t, ctx, row(a)+` !== null`)
	b := postID("/hooks/pass") // the target is down: 502
	until(t, ctx, row(b)+` !== null`)
	if got := text(t, ctx, `#tail tr[data-route="pass"] .badge`); got != "failed" {
		t.Errorf("a sync event whose target is down shows %q, want failed", got)
	}
	// Filter by outcome: only the failed one is shown.
	eval(t, ctx, `{ const o = document.getElementById("t-outcome"); o.value = "failed"; o.dispatchEvent(new Event("change")); }`)
	until(t, ctx, row(a)+`.closest("tr").classList.contains("hidden") && !`+row(b)+`.closest("tr").classList.contains("hidden")`)
	// Filter by route.
	eval(t, ctx, `{ document.getElementById("t-outcome").value = ""; const r = document.getElementById("t-route"); r.value = "orders"; r.dispatchEvent(new Event("change")); }`)
	until(t, ctx, `!`+row(a)+`.closest("tr").classList.contains("hidden") && `+row(b)+`.closest("tr").classList.contains("hidden")`)
	screenshot(t, ctx, "tail-1280", 1280, 800)
	do(t, ctx, chromedp.EmulateViewport(1280, 800))

	// Paused: an event answered meanwhile is not added...
	do(t, ctx, chromedp.Click(chromedp.CSS("#t-pause")))
	until(t, ctx, `document.getElementById("t-state").textContent === "paused"`)
	c := postID("/hooks/orders")
	waitFor(t, "the event in the journal", func() bool {
		var ev struct{ Status int }
		return apiJSON(t, h, "/admin/events/"+c, &ev) == 200 && ev.Status == 202
	})
	time.Sleep(time.Second) // the stream polls four times a second: long enough to show it, were it not paused
	if n := run(t, ctx, chromedp.Evaluate[bool](row(c)+` !== null`)); n {
		t.Fatal("a paused tail added an event")
	}
	// ...and arrives on resume.
	do(t, ctx, chromedp.Click(chromedp.CSS("#t-pause")))
	until(t, ctx, row(c)+` !== null`)
	if got := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#tail tbody tr").length`)); got != 3 {
		t.Errorf("the tail shows %d rows, want 3 (each event once)", got)
	}
}
