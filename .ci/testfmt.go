//go:build ignore

// testfmt reads `go test -json` on stdin and prints one line per package as
// each finishes ("ok", "FAIL" or "?"), the output of every failing test, and
// a closing count; the whole verbose output goes to the -log file, which the
// secrets scan reads. Without it, `go test ./...` prints packages in import
// order, so one slow package keeps the terminal silent for minutes.
//
//	go test -json ./... | go run .ci/testfmt.go -log test.log [-append] [-counts FILE]
//	go run .ci/testfmt.go -sum FILE
//
// It exits 1 when a package or test failed, when the build failed, or when
// no package ran at all. With -counts it appends "passed failed skipped" to
// FILE; -sum prints the totals of such a file as the closing line
// ("tests: N passed, N failed, N skipped"), for make test's two runs.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	Elapsed    float64
	ImportPath string // build-output and build-fail events
}

// maxKept bounds what is kept of one test's output for printing on failure.
const maxKept = 400

func main() {
	logPath := flag.String("log", "test.log", "file for the verbose output")
	appendLog := flag.Bool("append", false, "append to -log instead of truncating it")
	countsPath := flag.String("counts", "", "append this run's counts to this file")
	sumPath := flag.String("sum", "", "print the totals of a -counts file and exit")
	flag.Parse()
	if *sumPath != "" {
		os.Exit(sum(*sumPath))
	}
	mode := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if *appendLog {
		mode = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	logf, err := os.OpenFile(*logPath, mode, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testfmt:", err)
		os.Exit(2)
	}
	defer logf.Close()
	log := bufio.NewWriter(logf)
	defer log.Flush()

	kept := map[string][]string{} // package + "\x00" + test: its output so far
	var passed, failed, skipped, packages int
	bad := false
	start := time.Now()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	for in.Scan() {
		line := in.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event: the go command's own message (a build error
			// outside any package, a panic). Shown, and counted as failure.
			fmt.Println(string(line))
			log.Write(append(line, '\n'))
			bad = true
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
			log.WriteString(e.Output)
		case "build-fail":
			fmt.Printf("FAIL\t%s [build failed]\n", e.ImportPath)
			bad = true
		case "output":
			log.WriteString(e.Output)
			if k := kept[key]; len(k) < maxKept {
				kept[key] = append(k, e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test != "" {
				switch e.Action {
				case "pass":
					passed++
				case "skip":
					skipped++
				case "fail":
					failed++
					fmt.Printf("--- FAIL: %s (%s)\n", e.Test, e.Package)
					fmt.Print(strings.Join(kept[key], ""))
				}
				delete(kept, key)
				continue
			}
			packages++
			switch e.Action {
			case "pass":
				fmt.Printf("ok  \t%s\t%.1fs\n", e.Package, e.Elapsed)
			case "skip":
				fmt.Printf("?   \t%s\t[no test files]\n", e.Package)
			case "fail":
				bad = true
				// The package's own output: the shuffle seed, a panic or
				// a timeout that no single test reported.
				fmt.Print(strings.Join(kept[key], ""))
				fmt.Printf("FAIL\t%s\t%.1fs\n", e.Package, e.Elapsed)
			}
			delete(kept, key)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testfmt: reading the test output:", err)
		bad = true
	}
	if packages == 0 {
		fmt.Println("testfmt: no package was tested")
		bad = true
	}
	if bad && failed == 0 {
		failed = 1 // a build or package failure no test reported
	}
	fmt.Printf("%d packages in %s\n", packages, time.Since(start).Round(time.Second))
	fmt.Printf("run: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if *countsPath != "" {
		f, err := os.OpenFile(*countsPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d %d %d\n", passed, failed, skipped)
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testfmt:", err)
			bad = true
		}
	}
	if bad || failed > 0 {
		log.Flush()
		os.Exit(1)
	}
}

// sum prints the totals of a -counts file; non-zero when anything failed.
func sum(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testfmt:", err)
		return 2
	}
	var p, f, s int
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var a, b, c int
		if _, err := fmt.Sscan(l, &a, &b, &c); err != nil {
			fmt.Fprintf(os.Stderr, "testfmt: %s: bad line %q\n", path, l)
			return 2
		}
		p, f, s = p+a, f+b, s+c
	}
	fmt.Printf("tests: %d passed, %d failed, %d skipped\n", p, f, s)
	if f > 0 || p == 0 {
		return 1
	}
	return 0
}
