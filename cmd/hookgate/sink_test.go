package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/internal/syncbuf"
)

// sinkRun starts runSink in a goroutine and returns the address it
// announced on stderr, its stdout, the rest of stderr, and a stop function
// that sends SIGINT and returns the exit code.
func sinkRun(t *testing.T, args ...string) (addr string, stdout *syncbuf.Buffer, stderr *syncbuf.Buffer, stop func() int) {
	t.Helper()
	stdout, stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- runSink(args, stdout, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("runSink printed nothing on stderr (exit %d)", <-code)
	}
	first := lines.Text()
	addr, ok := strings.CutPrefix(first, "hookgate sink: listening on ")
	if !ok {
		t.Fatalf("first stderr line = %q, want the listen address", first)
	}
	rest := make(chan struct{})
	go func() {
		defer close(rest)
		for lines.Scan() {
			stderr.Write([]byte(lines.Text() + "\n"))
		}
	}()
	var once sync.Once
	exit := -1
	stop = func() int {
		once.Do(func() {
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case exit = <-code:
			case <-time.After(10 * time.Second):
				t.Fatal("runSink did not return after SIGINT")
			}
			<-rest
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return addr, stdout, stderr, stop
}

func sinkPost(t *testing.T, addr, uri, body string) (int, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	req.SetRequestURI("http://" + addr + uri)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode(), string(resp.Header.Peek("Retry-After"))
}

func TestSinkCommandPrintsRequests(t *testing.T) {
	addr, stdout, stderr, stop := sinkRun(t, "--listen", "127.0.0.1:0", "--statuses", "503, 503", "--retry-after", "7")
	var got []int
	for range 3 {
		st, ra := sinkPost(t, addr, "/crm?x=1", `{"n":1}`)
		if ra != "7" {
			t.Errorf("Retry-After = %q, want 7", ra)
		}
		got = append(got, st)
	}
	if want := []int{503, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout has %d lines, want 3:\n%s", len(lines), stdout.String())
	}
	var r struct {
		Method, Path, Query, Body string
		Headers                   map[string]string
	}
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/crm" || r.Query != "x=1" || r.Body != `{"n":1}` || r.Headers["Content-Type"] != "application/json" {
		t.Errorf("line = %s", lines[0])
	}
	if want := "hookgate sink: received 3 requests on 1 connections\n"; stderr.String() != want {
		t.Errorf("stderr after the address = %q, want %q", stderr.String(), want)
	}
}

func TestSinkCommandQuiet(t *testing.T) {
	addr, stdout, stderr, stop := sinkRun(t, "--listen", "127.0.0.1:0", "--quiet", "--status", "202")
	if st, _ := sinkPost(t, addr, "/", "{}"); st != 202 {
		t.Errorf("status = %d, want 202", st)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing with --quiet", stdout.String())
	}
	if want := "hookgate sink: received 1 requests on 1 connections\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestSinkCommandErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: "Usage: hookgate sink"},
		{name: "unknown flag", args: []string{"--nope"}, wantCode: 2, wantStderr: "flag provided but not defined: -nope"},
		{name: "bad statuses", args: []string{"--statuses", "503,x"}, wantCode: 2, wantStderr: `--statuses: "x" is not an HTTP status`},
		{name: "bad status", args: []string{"--status", "1000"}, wantCode: 2, wantStderr: "--status 1000 is not an HTTP status"},
		{name: "bad delay", args: []string{"--delay", "5"}, wantCode: 2, wantStderr: "invalid value \"5\" for flag -delay"},
		{name: "extra argument", args: []string{"extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "address in use", args: []string{"--listen", busy.Addr().String()}, wantCode: 1, wantStderr: "Pick another address with --listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runSink(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || (tt.wantStdout == "" && stdout.Len() != 0) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || (tt.wantStderr == "" && stderr.Len() != 0) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
