package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports; reading sysconf would need
// cgo for no gain.
const clockTicks = 100

// procCPU returns the user+system CPU time pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchmarks: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("benchmarks: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procParent returns the parent pid of pid.
func procParent(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchmarks: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("benchmarks: short /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

// procPeakRSS returns VmHWM, the peak resident set size, in bytes.
func procPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("benchmarks: no VmHWM in /proc/%d/status", pid)
}

// procTree returns pid and its direct children: nginx does its work in
// worker processes under the master, and both count.
func procTree(pid int) []int {
	pids := []int{pid}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if pp, err := procParent(p); err == nil && pp == pid {
			pids = append(pids, p)
		}
	}
	return pids
}

// treeCPU sums CPU time over pid and its children, as of now.
func treeCPU(pid int) time.Duration {
	var sum time.Duration
	for _, p := range procTree(pid) {
		if d, err := procCPU(p); err == nil {
			sum += d
		}
	}
	return sum
}

// treePeakRSS sums the peak RSS over pid and its children. For nginx this
// counts shared pages twice; it is an upper bound, and says so in the
// README.
func treePeakRSS(pid int) int64 {
	var sum int64
	for _, p := range procTree(pid) {
		if n, err := procPeakRSS(p); err == nil {
			sum += n
		}
	}
	return sum
}

// CoreSplit says which CPUs the load generator and the servers under test
// run on.
type CoreSplit struct {
	Gen     []int  `json:"load_generator_cpus"`
	Srv     []int  `json:"server_cpus"`
	Pinned  bool   `json:"pinned"`
	Taskset string `json:"-"` // path of taskset, "" when not pinning
	Note    string `json:"note"`
}

func cpuList(cs []int) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

func parseCPUList(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Environment variables the harness passes to its own re-executed copy.
const (
	envPinned = "HOOKGATE_BENCH_PINNED" // "GEN|SRV", e.g. "0|1"
	envRole   = "HOOKGATE_BENCH_ROLE"   // "sink": run as the benchmark sink
	envListen = "HOOKGATE_BENCH_LISTEN" // the sink's address
	envIDs    = "HOOKGATE_BENCH_IDS"    // "1": the sink keeps an id log
)

// pinSelf splits the CPUs in two halves, and re-executes the harness under
// `taskset -c GEN` so every thread of the generator stays on its half
// (setting the affinity of the running process would only move the
// calling thread). It returns only when no re-exec happened: when pinning
// is off, impossible, or this is already the pinned copy.
func pinSelf(mode string) CoreSplit {
	if v := os.Getenv(envPinned); v != "" {
		gen, srv, _ := strings.Cut(v, "|")
		ts, _ := exec.LookPath("taskset")
		return CoreSplit{Gen: parseCPUList(gen), Srv: parseCPUList(srv), Pinned: true, Taskset: ts}
	}
	n := runtime.NumCPU()
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	split := CoreSplit{Gen: all, Srv: all}
	if mode == "off" {
		split.Note = "not pinned (--pin=off): load generator and servers share all CPUs"
		return split
	}
	if n < 2 {
		split.Note = "not pinned: only one CPU, load generator and servers share it"
		return split
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		split.Note = "not pinned: taskset not found (apt-get install util-linux); load generator and servers share all CPUs"
		return split
	}
	self, err := os.Executable()
	if err != nil {
		split.Note = "not pinned: cannot find own executable: " + err.Error()
		return split
	}
	gen, srv := all[:n/2], all[n/2:]
	env := append(os.Environ(),
		envPinned+"="+cpuList(gen)+"|"+cpuList(srv),
		"GOMAXPROCS="+strconv.Itoa(len(gen)))
	args := append([]string{ts, "-c", cpuList(gen), self}, os.Args[1:]...)
	err = syscall.Exec(ts, args, env)
	// Exec only returns on failure.
	split.Note = "not pinned: re-exec under taskset failed: " + err.Error()
	return split
}

// describe is the core split in one sentence for the report header.
func (c CoreSplit) describe() string {
	if !c.Pinned {
		return c.Note
	}
	return fmt.Sprintf("load generator pinned to CPU %s (GOMAXPROCS=%d); servers under test and the sink pinned to CPU %s "+
		"(GOMAXPROCS=%d each, nginx worker_processes %d), all with taskset",
		cpuList(c.Gen), len(c.Gen), cpuList(c.Srv), len(c.Srv), len(c.Srv))
}

// srvProcs is how many CPUs a server may use: GOMAXPROCS for Go servers,
// worker_processes for nginx.
func (c CoreSplit) srvProcs() int {
	if len(c.Srv) == 0 {
		return 1
	}
	return len(c.Srv)
}

// Child is a server process the harness started.
type Child struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // stdout+stderr go here, for the message when it fails
	done chan struct{}
	err  error
}

// startChild runs argv on the server CPUs, with GOMAXPROCS to match, and
// its output in dir/name.log.
func startChild(split CoreSplit, dir, name string, env []string, argv ...string) (*Child, error) {
	if split.Pinned && split.Taskset != "" {
		argv = append([]string{split.Taskset, "-c", cpuList(split.Srv)}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(split.srvProcs())), env...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Its own process group, so a Ctrl-C of the harness reaches the
	// harness first and it can stop the child cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("benchmarks: starting %s: %v", name, err)
	}
	c := &Child{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	live.Lock()
	live.m[c] = true
	live.Unlock()
	go func() {
		c.err = cmd.Wait()
		f.Close()
		live.Lock()
		delete(live.m, c)
		live.Unlock()
		close(c.done)
	}()
	return c, nil
}

// live is every child still running, so an interrupted harness can stop
// them: the kernel's parent-death signal reaches nginx's master but not
// its workers, which would keep the port.
var live = struct {
	sync.Mutex
	m map[*Child]bool
}{m: map[*Child]bool{}}

// stopAll stops every child still running.
func stopAll() {
	live.Lock()
	cs := make([]*Child, 0, len(live.m))
	for c := range live.m {
		cs = append(cs, c)
	}
	live.Unlock()
	for _, c := range cs {
		c.Stop(3 * time.Second)
	}
}

// Pid is the process to measure. taskset execs the real program, so the
// pid is the server's own.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Exited reports whether the child has already stopped.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop asks the child to exit (SIGTERM), and kills it after timeout.
func (c *Child) Stop(timeout time.Duration) {
	if c == nil || c.Exited() {
		return
	}
	_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.Cmd.Process.Kill()
		<-c.done
	}
}

// tail returns the end of the child's log, for error messages.
func (c *Child) tail() string {
	b, _ := os.ReadFile(c.Log)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// lastLines is the end of the child's log on one line, for a table note.
func (c *Child) lastLines() string {
	lines := strings.Split(c.tail(), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// waitReady polls addr until it accepts a TCP connection, the child exits,
// or timeout passes.
func waitReady(c *Child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.Exited() {
			return fmt.Errorf("%s exited (%v) before listening on %s: %s", c.Name, c.err, addr, c.lastLines())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v: %s", c.Name, addr, timeout, c.lastLines())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr picks a free loopback port. Another process could take it
// before the child binds it; on a loopback test box that is rare, and
// waitReady then fails with the child's own message.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// machine describes where the run happened, for the report header.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
	Kernel   string `json:"kernel"`
}

func describeMachine() Machine {
	m := Machine{CPUs: onlineCPUs(), Go: runtime.Version(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// onlineCPUs counts processors in /proc/cpuinfo: runtime.NumCPU would say
// 1 inside the pinned copy.
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := strings.Count(string(b), "\nprocessor\t")
	if strings.HasPrefix(string(b), "processor\t") {
		n++
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// loadAvg is the 1, 5 and 15 minute load averages, "" if unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
