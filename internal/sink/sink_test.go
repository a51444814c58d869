package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func start(t *testing.T, opts Options) *Sink {
	t.Helper()
	s, err := Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// send posts body to s with client c and returns status, Retry-After and body.
func send(t *testing.T, c *fasthttp.HostClient, method, uri, body string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.SetBodyString(body)
	}
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	return resp.StatusCode(), string(resp.Header.Peek("Retry-After")), string(resp.Body())
}

func TestRecordsRequests(t *testing.T) {
	var out bytes.Buffer
	s := start(t, Options{Out: &syncWriter{w: &out}})
	c := &fasthttp.HostClient{Addr: s.Addr()}

	st, _, body := send(t, c, "POST", s.URL()+"/crm/a%20b?x=1&y=%2F", `{"a":1}`,
		map[string]string{"Content-Type": "application/json", "x-api-key": "k1"})
	if st != 200 || body != DefaultBody {
		t.Fatalf("answer = %d %q, want 200 %q", st, body, DefaultBody)
	}
	send(t, c, "GET", s.URL()+"/api.php?apiToken=t", "", nil)

	reqs, err := s.Wait(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/crm/a%20b" || r.Query != "x=1&y=%2F" || r.Body != `{"a":1}` {
		t.Errorf("request = %+v", r)
	}
	if got := r.Header("X-API-KEY"); got != "k1" {
		t.Errorf("Header(X-API-KEY) = %q, want k1", got)
	}
	if got := r.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header("host"); got != s.Addr() {
		t.Errorf("Host = %q, want %q", got, s.Addr())
	}
	if r.At.IsZero() {
		t.Error("At not set")
	}
	if reqs[1].Method != "GET" || reqs[1].Path != "/api.php" || reqs[1].Query != "apiToken=t" || reqs[1].Body != "" {
		t.Errorf("second request = %+v", reqs[1])
	}

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("out has %d lines, want 2: %q", len(lines), out.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"method", "path", "query", "headers", "body"} {
		if _, ok := line[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[0])
		}
	}
	if len(line) != 5 {
		t.Errorf("JSON line has %d keys, want 5: %s", len(line), lines[0])
	}
	if line["body"] != `{"a":1}` || line["path"] != "/crm/a%20b" || line["method"] != "POST" {
		t.Errorf("JSON line = %s", lines[0])
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantStatus []int
		wantRetry  string
		wantBody   string
	}{
		{name: "default", opts: Options{}, wantStatus: []int{200, 200}, wantBody: DefaultBody},
		{name: "fixed status", opts: Options{Status: 500}, wantStatus: []int{500, 500}, wantBody: DefaultBody},
		{name: "statuses then status", opts: Options{Statuses: []int{503, 429}, Status: 201},
			wantStatus: []int{503, 429, 201, 201}, wantBody: DefaultBody},
		{name: "body and retry-after", opts: Options{Status: 429, Body: `{"status":false}`, RetryAfter: "5"},
			wantStatus: []int{429}, wantRetry: "5", wantBody: `{"status":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.opts)
			c := &fasthttp.HostClient{Addr: s.Addr()}
			for i, want := range tt.wantStatus {
				st, ra, body := send(t, c, "POST", s.URL()+"/", "x", nil)
				if st != want || ra != tt.wantRetry || body != tt.wantBody {
					t.Errorf("answer %d = %d %q %q, want %d %q %q", i, st, ra, body, want, tt.wantRetry, tt.wantBody)
				}
			}
		})
	}
}

func TestStartRejectsBadStatus(t *testing.T) {
	for _, opts := range []Options{{Status: 42}, {Statuses: []int{200, 1000}}} {
		if s, err := Start("127.0.0.1:0", opts); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded, want an error", opts)
		}
	}
}

func TestConnsCountsTCPConnections(t *testing.T) {
	s := start(t, Options{})
	c := &fasthttp.HostClient{Addr: s.Addr(), MaxConns: 1}
	for range 20 {
		send(t, c, "POST", s.URL()+"/", "x", nil)
	}
	if got := s.Conns(); got != 1 {
		t.Errorf("Conns = %d after 20 keep-alive requests, want 1", got)
	}
	c2 := &fasthttp.HostClient{Addr: s.Addr()}
	send(t, c2, "POST", s.URL()+"/", "x", nil)
	if got := s.Conns(); got != 2 {
		t.Errorf("Conns = %d with a second client, want 2", got)
	}
}

func TestWaitTimesOut(t *testing.T) {
	s := start(t, Options{})
	c := &fasthttp.HostClient{Addr: s.Addr()}
	send(t, c, "POST", s.URL()+"/", "x", nil)
	reqs, err := s.Wait(2, 50*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || len(reqs) != 1 {
		t.Errorf("Wait = %d requests, %v; want 1 and ErrTimeout", len(reqs), err)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := start(t, Options{Statuses: []int{503, 503, 503}})
	c := &fasthttp.HostClient{Addr: s.Addr(), MaxConns: 8}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	byStatus := map[int]int{}
	for range workers {
		wg.Go(func() {
			for range each {
				st, _, _ := send(t, c, "POST", s.URL()+"/", "x", nil)
				mu.Lock()
				byStatus[st]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := s.Wait(workers*each, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if byStatus[503] != 3 || byStatus[200] != workers*each-3 {
		t.Errorf("statuses = %v, want 3x503 and %dx200", byStatus, workers*each-3)
	}
	if s.Count() != workers*each || len(s.Requests()) != workers*each {
		t.Errorf("Count = %d, Requests = %d, want %d", s.Count(), len(s.Requests()), workers*each)
	}
}

func TestDiscardKeepsNothing(t *testing.T) {
	var out bytes.Buffer
	s := start(t, Options{Discard: true, Out: &out})
	c := &fasthttp.HostClient{Addr: s.Addr()}
	for range 3 {
		send(t, c, "POST", s.URL()+"/", "x", nil)
	}
	reqs, err := s.Wait(3, 5*time.Second)
	if err != nil || reqs != nil {
		t.Fatalf("Wait = %v, %v; want nil, nil", reqs, err)
	}
	if s.Count() != 3 || len(s.Requests()) != 0 || out.Len() != 0 {
		t.Errorf("Count = %d, Requests = %d, out = %q; want 3, 0, empty", s.Count(), len(s.Requests()), out.String())
	}
	if _, err := s.Wait(4, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait(4) = %v, want ErrTimeout", err)
	}
}

func TestDelayAndCloseCutsItShort(t *testing.T) {
	s, err := Start("127.0.0.1:0", Options{Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c := &fasthttp.HostClient{Addr: s.Addr()}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(s.URL() + "/")
		done <- c.DoTimeout(req, resp, 30*time.Second)
	}()
	if _, err := s.Wait(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("answer came before the delay: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("request still hanging after Close")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestCloseRightAfterStart: Close called before the serving goroutine has
// handed the listener to fasthttp used to hang forever (fasthttp's
// Shutdown saw no listener to close, then Serve started and never
// returned). Repeated because the window is a goroutine switch wide.
func TestCloseRightAfterStart(t *testing.T) {
	for i := range 200 {
		s, err := Start("127.0.0.1:0", Options{})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("round %d: Close: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close right after Start did not return in 10s", i)
		}
		if _, err := net.Dial("tcp", s.Addr()); err == nil {
			t.Fatalf("round %d: the sink still accepts connections after Close", i)
		}
	}
}
