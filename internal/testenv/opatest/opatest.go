// Package opatest runs the real `opa` binary as a server for tests: on a
// loopback port the kernel picks (read back from /proc, so no port is
// guessed and raced for), with helpers to kill, freeze (SIGSTOP, a hung
// OPA that still accepts connections), thaw and restart it on the same
// address. Tests skip through testenv.Missing when opa is not on PATH.
package opatest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	args := append([]string{"run", "--server", "--addr", addr, "--log-level", "debug"}, o.args...)
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
// but nothing answers, like a hung process.
func (o *OPA) Freeze() { o.signal(syscall.SIGSTOP) }

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
