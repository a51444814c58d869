package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfRun samples the process under test with Linux perf during one
// measurement. hookgate has no pprof endpoint, and perf needs none: Go
// binaries keep their symbol table and frame pointers, so the report
// names Go functions. The samples go to DIR/<scenario>.perf.data and two
// text reports next to it: self time per function, and inclusive time
// (where the time goes, callees included).
type perfRun struct {
	cmd  *exec.Cmd
	data string
	base string
}

// startPerf starts `perf record` on pid for d. perf inherits the
// harness's CPU, not the server's, so it does not steal from what it
// measures beyond the sampling itself.
func startPerf(dir, name string, pid int, d time.Duration) (*perfRun, error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, fmt.Errorf("benchmarks: --perf needs perf on PATH (apt-get install linux-perf)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, name)
	p := &perfRun{data: base + ".perf.data", base: base}
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	p.cmd = exec.Command(bin, "record", "-q", "-F", "499", "-g", "-p", pidList(procTree(pid)), "-o", p.data, "--", "sleep", secs)
	p.cmd.Stdout, p.cmd.Stderr = nil, nil
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchmarks: starting perf: %v", err)
	}
	return p, nil
}

// finish waits for perf and writes the two text reports. It returns the
// top self-time functions in one line, for the progress log.
func (p *perfRun) finish() (string, error) {
	if err := p.cmd.Wait(); err != nil {
		return "", fmt.Errorf("benchmarks: perf record: %v", err)
	}
	self, err := exec.Command("perf", "report", "-i", p.data, "--stdio", "--no-children",
		"--sort", "symbol", "-g", "none", "--percent-limit", "0.5").Output()
	if err != nil {
		return "", fmt.Errorf("benchmarks: perf report: %v", err)
	}
	if err := os.WriteFile(p.base+".self.txt", self, 0o644); err != nil {
		return "", err
	}
	incl, err := exec.Command("perf", "report", "-i", p.data, "--stdio", "--children",
		"--sort", "symbol", "-g", "none", "--percent-limit", "3").Output()
	if err != nil {
		return "", fmt.Errorf("benchmarks: perf report: %v", err)
	}
	if err := os.WriteFile(p.base+".inclusive.txt", incl, 0o644); err != nil {
		return "", err
	}
	return topSymbols(string(self), 5), nil
}

// topSymbols picks the first n "12.34%  [.] name" lines of a perf report.
func topSymbols(report string, n int) string {
	var out []string
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		name := f[2:]
		for len(name) > 1 && name[len(name)-1] == "-" {
			name = name[:len(name)-1] // the empty IPC columns
		}
		out = append(out, f[0]+" "+strings.Join(name, " "))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "; ")
}

// pidList is "1,2,3": perf -p follows the threads of a process, not its
// children, and nginx works in its children.
func pidList(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// pprofRun fetches hookgate's own CPU profile from its admin listener
// (/debug/pprof/profile) over one measurement. Unlike perf's, the profile
// is Go's pprof format: `go tool pprof` reads it, and the compiler's
// profile-guided optimization reads the scenarios' profiles merged (the
// eighteenth run in README.md measured that, and did not keep it).
type pprofRun struct {
	path string
	done chan error
}

// startPprof asks for a profile of d, rounded up to whole seconds (the
// endpoint's unit), and writes it to DIR/<scenario>.pprof when it comes.
func startPprof(dir, name, admin string, d time.Duration) *pprofRun {
	p := &pprofRun{path: filepath.Join(dir, name+".pprof"), done: make(chan error, 1)}
	secs := int((d + time.Second - 1) / time.Second)
	go func() {
		p.done <- p.fetch(dir, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), d)
	}()
	return p
}

func (p *pprofRun) fetch(dir, url string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("benchmarks: fetching the CPU profile: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("benchmarks: fetching the CPU profile: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("benchmarks: fetching the CPU profile: %v", err)
	}
	return f.Close()
}

// finish waits for the profile and returns where it was written.
func (p *pprofRun) finish() (string, error) {
	if err := <-p.done; err != nil {
		return "", err
	}
	return p.path, nil
}
