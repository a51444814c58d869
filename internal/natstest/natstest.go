// Package natstest runs real nats-server instances inside a test process:
// a single JetStream node (Start) or a JetStream cluster (Cluster). Tests
// of the NATS queue engine use it instead of mocks, so they exercise the
// same server code a deployment runs.
//
// Every server listens on 127.0.0.1 only, keeps its JetStream store under
// t.TempDir(), and is shut down by t.Cleanup. A node can be shut down and
// restarted on the same ports and store, so a test can take NATS away and
// bring it back with its data ("NATS down, then back"; "one node killed").
package natstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a test waits for a server to accept
// connections (or a cluster to elect a meta leader). It is a failure
// timeout for a noisy 2-core machine, not an expectation.
const readyTimeout = 30 * time.Second

// Server is one nats-server with JetStream enabled.
type Server struct {
	t         testing.TB
	name      string
	dir       string // JetStream store, kept across Restart
	port      int    // client port, kept across Restart
	configure []func(*server.Options)
	cluster   *clusterConf // nil for a single node

	mu  sync.Mutex
	srv *server.Server // nil while shut down
}

type clusterConf struct {
	name   string
	port   int      // this node's route port
	routes []string // every node's route URL (its own is ignored by the server)
}

// Start runs a single JetStream node on a random 127.0.0.1 port. configure
// functions may adjust the options before the server starts (for example
// to require a token); they run again at every Restart.
func Start(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, name: "single", dir: t.TempDir(), port: freePort(t), configure: configure}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

// URL is the client URL, e.g. nats://127.0.0.1:41234. It stays the same
// across Restart.
func (s *Server) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// Port is the client port.
func (s *Server) Port() int { return s.port }

// Server is the running nats-server, or nil while shut down.
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server (clients see the connection drop). It is safe
// to call when already shut down.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port with the same store,
// so everything JetStream had stored is there again. A running server is
// shut down first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

func (s *Server) options() *server.Options {
	o := &server.Options{
		ServerName: s.name,
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
		// The default 2 minutes makes a restarted cluster node wait long
		// before it may shut down cleanly; tests restart nodes often.
		LameDuckDuration: 0,
	}
	if c := s.cluster; c != nil {
		o.Cluster.Name = c.name
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = c.port
		for _, r := range c.routes {
			u, err := url.Parse(r)
			if err != nil {
				s.t.Fatalf("natstest: route %q: %v", r, err)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	for _, f := range s.configure {
		f(o)
	}
	return o
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := server.NewServer(s.options())
	if err != nil {
		s.t.Fatalf("natstest: %s: %v", s.name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.t.Fatalf("natstest: %s not ready on port %d within %s", s.name, s.port, readyTimeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// Clustered is a JetStream cluster of nodes routed to each other.
type Clustered struct {
	t     testing.TB
	nodes []*Server
}

// Cluster runs an n-node JetStream cluster on random 127.0.0.1 ports and
// returns once it has elected a meta leader, so streams with up to n
// replicas can be created at once.
func Cluster(t testing.TB, n int, configure ...func(*server.Options)) *Clustered {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster needs at least one node, not %d", n)
	}
	routes := make([]string, n)
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(routePorts[i])
	}
	c := &Clustered{t: t}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &Server{
			t:         t,
			name:      fmt.Sprintf("n%d", i),
			dir:       t.TempDir(),
			port:      freePort(t),
			configure: configure,
			cluster:   &clusterConf{name: "hookgate-test", port: routePorts[i], routes: routes},
		})
	}
	// Start every node before waiting on any: a node is only ready for
	// JetStream once it sees the others.
	var wg sync.WaitGroup
	for _, s := range c.nodes {
		t.Cleanup(s.Shutdown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := server.NewServer(s.options())
			if err != nil {
				t.Errorf("natstest: %s: %v", s.name, err)
				return
			}
			srv.Start()
			s.mu.Lock()
			s.srv = srv
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range c.nodes {
		if !s.Server().ReadyForConnections(readyTimeout) {
			t.Fatalf("natstest: %s not ready on port %d within %s", s.name, s.port, readyTimeout)
		}
	}
	c.WaitLeader()
	return c
}

// URLs are the client URLs of every node, for a client's server list.
func (c *Clustered) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.URL()
	}
	return out
}

// Node is node i (0-based), to Shutdown or Restart it.
func (c *Clustered) Node(i int) *Server { return c.nodes[i] }

// WaitLeader waits until the running nodes agree on a JetStream meta
// leader, every running node is current with it, and the leader counts
// every running node as a peer it may place replicas on (after Cluster,
// and after a node was shut down or restarted). Without the last, a
// stream with as many replicas as nodes can be refused for a moment after
// the leader is elected: "no suitable peers for placement, peer offline",
// until the leader has heard each node's first statistics.
func (c *Clustered) WaitLeader() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var leader *server.Server
		leaders, current, running := 0, 0, 0
		for _, s := range c.nodes {
			srv := s.Server()
			if srv == nil {
				continue
			}
			running++
			if srv.JetStreamIsLeader() {
				leaders++
				leader = srv
			}
			if srv.JetStreamIsCurrent() {
				current++
			}
		}
		placeable := 0
		if leaders == 1 {
			placeable = c.placeable(leader)
		}
		if leaders == 1 && current == running && placeable == running {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster not ready after %s (%d running, %d leaders, %d current, %d placeable)",
				readyTimeout, running, leaders, current, placeable)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// placeable counts the running nodes the meta leader would place a
// replica on (online, with JetStream, statistics received).
func (c *Clustered) placeable(leader *server.Server) int {
	peers := map[string]bool{}
	for _, name := range leader.JetStreamClusterPeers() {
		peers[name] = true
	}
	n := 0
	for _, s := range c.nodes {
		if s.Server() != nil && peers[s.name] {
			n++
		}
	}
	return n
}

// freePort returns a free 127.0.0.1 port below the kernel's ephemeral
// range. A port from the range (what listening on port 0 gives) can be
// taken as the source port of any outgoing connection between our check
// and the server's bind, and with every package's tests running at once
// that happened: a node never started ("not ready on port ... within
// 30s"). Below the range, only another explicit bind can take it.
func freePort(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow()
	for range 100 {
		port := portFloor + rand.IntN(lo-portFloor)
		if !reservePort(t, port) {
			continue // handed to another server of this run: try another
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken: try another
		}
		l.Close()
		return port
	}
	t.Fatalf("natstest: no free port in [%d, %d) after 100 tries", portFloor, lo)
	return 0
}

// reservePort claims port for the rest of the test with an exclusive
// flock on a file named after it, so no other freePort, in this process or
// in another test binary running beside it (go test runs packages in
// parallel), hands it out again while this test may still (re)start a
// server on it. Between freePort's probe and the server's listen the port
// is otherwise free for anyone: two servers given the same port left one
// of them never ready. The kernel drops the lock when the file is closed
// or the process dies, so nothing stale survives a crashed run.
func reservePort(t testing.TB, port int) bool {
	dir := filepath.Join(os.TempDir(), "hookgate-natstest-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	t.Cleanup(func() { f.Close() })
	return true
}

// portFloor is the lowest port freePort picks: clear of the well-known
// and most registered services' ports.
const portFloor = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read, or when it leaves too little room
// below it).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < portFloor+1000 {
		return 32768
	}
	return lo
}
