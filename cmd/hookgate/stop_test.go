package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/natstest"
	"github.com/hookgate/hookgate/internal/testport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// SIGTERM stops a gateway still starting, while it waits for a NATS
// cluster that cannot serve it yet (no majority): exit 0 at once, not
// after the half minute the start may wait, which a supervisor's grace
// period would end with SIGKILL. Before, signals were read only once the
// start was over.
func TestSIGTERMWhileWaitingForNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hookgate binary, with a NATS cluster; skipped with -short")
	}
	bin := buildBinary(t)
	c := natstest.Cluster(t, 3)
	c.Node(1).Shutdown()
	c.Node(2).Shutdown() // one node of three: no meta leader

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	err := os.WriteFile(cfg, []byte(`
[server]
listen = "`+testport.Addr(t)+`"

[queue]
backend = "nats"
[queue.nats]
urls = ["`+c.URLs()[0]+`"]
stream = "starting"
replicas = 3

[[target]]
name = "crm"
url = "http://127.0.0.1:1/crm"

[[route]]
name = "r"
path = "/hooks/r"
targets = ["crm"]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "serve.log")
	ch := spawnBinary(t, bin, cfg, logPath)
	defer ch.kill()

	// It waits for the cluster: its log says so, and it has not exited.
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(readFile(logPath), "not ready for hookgate's streams yet"); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-ch.done:
			t.Fatalf("hookgate exited (%v) instead of waiting for the cluster\n%s", err, tail(logPath, 3000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wait for the cluster logged in 60 s\n%s", tail(logPath, 3000))
		}
	}
	sent := time.Now()
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Well under the start's own bound (six 5 s timeouts).
	if err := ch.wait(15 * time.Second); err != nil {
		t.Fatalf("after SIGTERM while starting: %v\n%s", err, tail(logPath, 3000))
	}
	t.Logf("exited 0 %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(readFile(logPath), "stopping while starting") {
		t.Errorf("the log does not say the start was stopped\n%s", tail(logPath, 3000))
	}
}
