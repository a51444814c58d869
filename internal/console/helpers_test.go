package console_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/server"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// hookgate is one hookgate serving a test config on 127.0.0.1.
type hookgate struct {
	srv    *server.Server
	admin  string // http://127.0.0.1:port of the admin listener
	ingest string // http://127.0.0.1:port of the ingest listener
}

// start serves cfgText in-process until the test ends. In cfgText,
// LISTEN and ADMIN become free loopback ports, HOWXM_WASM the howxm-nps
// plugin (built once, cached) and CACHE a compilation cache the tests
// share.
func start(t *testing.T, cfgText string) *hookgate {
	t.Helper()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	r := strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen, "CACHE", filepath.Join(os.TempDir(), "hookgate-console-test-cache"))
	cfgText = r.Replace(cfgText)
	if strings.Contains(cfgText, "HOWXM_WASM") {
		cfgText = strings.ReplaceAll(cfgText, "HOWXM_WASM", plugintest.Build(t, "plugins/howxm-nps"))
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(cfg, server.Options{Path: path, Version: "test", Logger: slog.New(slog.DiscardHandler)})
	if err := s.Start(context.Background()); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return &hookgate{srv: s, admin: "http://" + adminListen, ingest: "http://" + listen}
}

func startSink(t *testing.T, opts sink.Options) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// post sends body to the ingest listener's path and returns the status.
func (h *hookgate) post(t *testing.T, path, body string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest("POST", h.ingest+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listen is a listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
