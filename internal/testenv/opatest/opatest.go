// Package opatest runs the real `opa` binary as a server for tests: on a
// loopback port the kernel picks (read back from /proc, so no port is
// guessed and raced for), with helpers to kill, freeze (SIGSTOP, a hung
// OPA that still accepts connections), thaw and restart it on the same
// address. Tests skip through testenv.Missing when opa is not on PATH.
package opatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/testenv"
)

// OPA is a running `opa run --server` process.
type OPA struct {
	// URL is the base URL, http://127.0.0.1:<port>.
	URL string
	// Addr is host:port.
	Addr string

	t    testing.TB
	bin  string
	dir  string
	args []string
	logs *testenv.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of opa, or skips the test (fails it when CI
// requires every component).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("opa")
	if err != nil {
		testenv.Missing(t, "opa", "the opa binary is not on PATH")
	}
	return bin
}

// Start runs `opa run --server --addr 127.0.0.1:0 <args...>` and returns
// once OPA answers /health. It is killed at test cleanup.
func Start(t testing.TB, args ...string) *OPA {
	t.Helper()
	o := &OPA{t: t, bin: Binary(t), args: args, logs: &testenv.Buffer{}}
	o.start("127.0.0.1:0")
	t.Cleanup(o.Kill)
	return o
}

func (o *OPA) start(addr string) {
	o.t.Helper()
	args := append([]string{"run", "--server", "--addr", addr, "--skip-version-check", "--log-level", "debug"}, o.args...)
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout, cmd.Stderr = o.logs, o.logs
	if err := cmd.Start(); err != nil {
		o.t.Fatalf("start opa: %v", err)
	}
	o.cmd, o.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(o.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if port := listeningPort(cmd.Process.Pid); port != 0 {
			o.Addr = "127.0.0.1:" + strconv.Itoa(port)
			break
		}
		select {
		case <-o.done:
			o.t.Fatalf("opa exited at start: %s", o.logs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("opa did not listen within 20 s: %s", o.logs)
		}
	}
	o.URL = "http://" + o.Addr
	o.WaitHealthy("/health")
}

// WaitHealthy polls path (e.g. "/health?bundles") until it answers 200.
func (o *OPA) WaitHealthy(path string) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+path, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			o.t.Fatalf("opa %s not healthy within 30 s: %s", path, o.logs)
		case <-o.done:
			o.t.Fatalf("opa exited: %s", o.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Logs returns what OPA printed so far.
func (o *OPA) Logs() string { return o.logs.String() }

// Kill stops OPA with SIGKILL and waits for it to exit.
func (o *OPA) Kill() {
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must not outlive the test
	_ = o.cmd.Process.Kill()
	<-o.done
	o.cmd = nil
}

// Freeze stops OPA with SIGSTOP: its socket still accepts connections
// but nothing answers, like a hung process. It returns once the kernel
// reports every thread stopped (a signal is delivered asynchronously).
func (o *OPA) Freeze() {
	o.t.Helper()
	o.signal(syscall.SIGSTOP)
	deadline := time.Now().Add(10 * time.Second)
	for !o.stopped() {
		if time.Now().After(deadline) {
			o.t.Fatal("opa not stopped 10 s after SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// stopped reports whether every thread of OPA is in state T (stopped).
func (o *OPA) stopped() bool {
	dir := fmt.Sprintf("/proc/%d/task", o.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ")".
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Thaw resumes a frozen OPA.
func (o *OPA) Thaw() { o.signal(syscall.SIGCONT) }

func (o *OPA) signal(sig syscall.Signal) {
	o.t.Helper()
	if o.cmd == nil {
		o.t.Fatal("opa is not running")
	}
	if err := o.cmd.Process.Signal(sig); err != nil {
		o.t.Fatalf("signal opa: %v", err)
	}
}

// Restart starts OPA again, with the same arguments, on the same address.
func (o *OPA) Restart() {
	o.t.Helper()
	o.Kill()
	o.start(o.Addr)
}

// listeningPort returns the TCP port pid listens on (IPv4), or 0.
func listeningPort(pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
			continue
		}
		_, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
			return int(port)
		}
	}
	return 0
}

// Policy is what StartPolicy serves: the shipped Rego files and data.authz.
type Policy struct {
	// Data is data.authz (authz.Engine.DataDocument()).
	Data map[string]any
	// Revision, when not empty, makes the directory a bundle (with a
	// .manifest of that revision and root authz) loaded with --bundle:
	// OPA then reports it under data.system.bundles and refuses writes
	// below authz. Empty loads the files as plain data, which SetData can
	// replace.
	Revision string
}

// StartPolicy writes p into a temporary directory and serves it with
// opa (see Start).
func StartPolicy(t testing.TB, p Policy) *OPA {
	t.Helper()
	o := &OPA{t: t, bin: Binary(t), logs: &testenv.Buffer{}, dir: t.TempDir()}
	o.write(p)
	o.start("127.0.0.1:0")
	t.Cleanup(o.Kill)
	return o
}

func (o *OPA) write(p Policy) {
	o.t.Helper()
	policyDir := filepath.Join(o.dir, "policy")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		o.t.Fatal(err)
	}
	var files []string
	for _, f := range authz.PolicyFiles() {
		path := filepath.Join(policyDir, f.Name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			o.t.Fatal(err)
		}
		files = append(files, path)
	}
	data, err := json.Marshal(map[string]any{"authz": p.Data})
	if err != nil {
		o.t.Fatal(err)
	}
	dataPath := filepath.Join(o.dir, "data.json")
	if err := os.WriteFile(dataPath, data, 0o644); err != nil {
		o.t.Fatal(err)
	}
	if p.Revision == "" {
		o.args = append(files, dataPath)
		return
	}
	manifest, err := json.Marshal(map[string]any{"revision": p.Revision, "roots": []string{"authz"}, "rego_version": 1})
	if err != nil {
		o.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.dir, ".manifest"), manifest, 0o644); err != nil {
		o.t.Fatal(err)
	}
	o.args = []string{"--bundle", o.dir}
}

// SetData replaces data.authz (only when started without a Revision).
func (o *OPA) SetData(data map[string]any) {
	o.t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		o.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, o.URL+"/v1/data/authz", bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer testenv.Close(o.t, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		o.t.Fatalf("PUT /v1/data/authz: status %d", resp.StatusCode)
	}
}

// Rewrite replaces the files of a killed OPA (Restart then serves them).
func (o *OPA) Rewrite(p Policy) {
	o.t.Helper()
	if o.cmd != nil {
		o.t.Fatal("opatest: Rewrite of a running opa")
	}
	o.write(p)
}

// DocumentedConfig returns the OPA configuration docs/opa.md documents
// (the YAML block with bundles and long polling), pointed at nmp's base
// URL instead of http://nmp-auth:8080.
func DocumentedConfig(t testing.TB, base string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "opa.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(m[1], "bundles:") && strings.Contains(m[1], "long_polling_timeout_seconds") {
			if !strings.Contains(m[1], "http://nmp-auth:8080") {
				t.Fatal("docs/opa.md: the OPA configuration no longer names http://nmp-auth:8080")
			}
			return strings.ReplaceAll(m[1], "http://nmp-auth:8080", base)
		}
	}
	t.Fatal("docs/opa.md has no OPA configuration with bundles and long polling")
	return ""
}
