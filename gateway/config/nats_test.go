package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const natsRoute = `
[[target]]
name = "crm"
url = "http://127.0.0.1:9/hook"

[[route]]
name = "in"
path = "/in"
targets = ["crm"]
`

// TestQueueNATS: [queue.nats] is read only with backend = "nats", its
// defaults, its secrets from the environment, and a clear sentence for
// each mistake.
func TestQueueNATS(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hookgate.toml")
	env := mapEnv(map[string]string{"NATS_TOKEN": "s3cret"})

	c, err := Parse([]byte("[queue]\nbackend = \"nats\"\n"+natsRoute), file, env)
	if err != nil {
		t.Fatal(err)
	}
	want := NATS{URLs: []string{DefaultNATSURL}, Stream: "hookgate", Replicas: 1, Lease: DefaultNATSLease, TLS: TLS{MinVersion: DefaultTLSMinVersion}}
	if !reflect.DeepEqual(c.Queue.NATS, want) || c.Queue.Backend != QueueBackendNATS {
		t.Errorf("defaults: %+v, want %+v", c.Queue.NATS, want)
	}

	c, err = Parse([]byte(`[queue]
backend = "nats"
[queue.nats]
urls = ["nats://10.0.0.1:4222", "tls://10.0.0.2:4222"]
stream = "edge_1"
replicas = 3
token = "${env:NATS_TOKEN}"
name = "gw-a"
lease = "10s"
`+natsRoute), file, env)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Queue.NATS
	if len(n.URLs) != 2 || n.Stream != "edge_1" || n.Replicas != 3 || n.Token.Reveal() != "s3cret" || n.Name != "gw-a" || n.Lease != 10*time.Second {
		t.Errorf("read %+v", n)
	}
	if strings.Contains(c.Summary(), "s3cret") {
		t.Error("the summary shows the token")
	}

	for _, tt := range []struct{ toml, want string }{
		{"[queue]\nbackend = \"kafka\"", `queue: backend: "kafka" is not a queue backend`},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nurls = []", "queue: nats: urls: must name at least one server"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nurls = [\"127.0.0.1:4222\"]", `"127.0.0.1:4222" is not a NATS server URL`},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nurls = [\"nats://a:4222\", \"hg:s3cret@b:4222\"]", "entry 2 is not a NATS server URL"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nstream = \"a.b\"", `queue: nats: stream: "a.b" is not a usable stream name`},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nreplicas = 7", "queue: nats: replicas: 7 is out of range"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nreplicas = 0", "queue: nats: replicas: must be at least 1"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\ntoken = \"${env:NATS_TOKEN}\"\nnkey = \"${env:NATS_TOKEN}\"", "set one way to authenticate"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\npassword = \"${env:NATS_TOKEN}\"", "password needs the user"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nstreem = \"x\"", "streem"},
		{"[queue]\nbackend = \"nats\"\n[queue.nats]\nlease = \"200ms\"", "queue: nats: lease: 200ms is too short"},
	} {
		_, err := Parse([]byte(tt.toml+"\n"+natsRoute), file, env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to say %q", tt.toml, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the token: %v", tt.toml, err)
		}
	}

	c, err = Parse([]byte("[queue]\n[queue.nats]\nstream = \"x\"\n"+natsRoute), file, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "ignored while backend = \"pebble\"") {
		t.Errorf("warnings = %q", c.Warnings)
	}
}
