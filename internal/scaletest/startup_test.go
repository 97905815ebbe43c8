package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store/scalefixture"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestStartupAtScale starts the real server on a SQLite database holding
// NMP_SCALE_BINDINGS role bindings (default 1,000,000) and measures the
// wall time from process start to /health/ready and to the first
// authorized request, the resident memory after the load (VmRSS, VmHWM)
// and the CPU time it spends over an idle window of NMP_SCALE_IDLE
// seconds (default 60). It runs only with NMP_SCALE_BINARY, the nmp
// binary to measure:
//
//	go build -o /tmp/nmp ./cmd/nmp
//	NMP_SCALE_BINARY=/tmp/nmp go test ./internal/scaletest -run StartupAtScale -v -count=1 -timeout 30m
//
// (-count=1: the test cache does not know that the binary changed).
//
// NMP_SCALE_DATA_DIR keeps (and reuses) the database between runs,
// NMP_SCALE_RUNS starts the server that many times on it. Other
// NMP_* variables (for example NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL) and
// GOGC/GOMEMLIMIT/GODEBUG reach the server unchanged.
func TestStartupAtScale(t *testing.T) {
	bin := os.Getenv("NMP_SCALE_BINARY")
	if bin == "" {
		t.Skip("set NMP_SCALE_BINARY to an nmp binary (go build -o /tmp/nmp ./cmd/nmp) to measure the server at scale")
	}
	n := envInt(t, "NMP_SCALE_BINDINGS", 1_000_000)
	idle := time.Duration(envInt(t, "NMP_SCALE_IDLE", 60)) * time.Second
	runs := envInt(t, "NMP_SCALE_RUNS", 1)
	dir := os.Getenv("NMP_SCALE_DATA_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "entities.db")
	marker := filepath.Join(dir, fmt.Sprintf("fixture-%d.done", n))
	if _, err := os.Stat(marker); err != nil {
		for _, f := range []string{db, db + "-wal", db + "-shm"} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := scalefixture.Create(context.Background(), scalefixture.SQLiteURL(db), n); err != nil {
			t.Fatal(err)
		}
		t.Logf("fixture: %d bindings in %v", n, time.Since(start).Round(time.Millisecond))
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for run := 1; run <= runs; run++ {
		measure(t, bin, dir, n, idle, run)
	}
}

func measure(t *testing.T, bin, dir string, n int, idle time.Duration, run int) {
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "services", "run")
	cmd.Env = append(os.Environ(), "NMP_DATA_DIR="+dir, "NMP_AUTH_ENABLED=true",
		"NMP_AUTH_ADMIN_EMAIL=admin@example.com", "NMP_SERVICE_HOST=127.0.0.1",
		"NMP_SERVICE_PORT="+strconv.Itoa(port), "NMP_SERVICE_LOG_LEVEL=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Logf("server exited: %v", err)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("server killed after 30 s: %v", <-done)
		}
		if t.Failed() {
			t.Logf("server output:\n%s", logs.String())
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	var ready time.Duration
	for {
		if time.Since(start) > 5*time.Minute {
			t.Fatal("not ready after 5 minutes")
		}
		if resp, err := client.Get(base + "/health/ready"); err == nil {
			testenv.Close(t, resp.Body)
			if resp.StatusCode == http.StatusOK {
				ready = time.Since(start)
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first decisions: the probe is Editor in ws-0 (allowed); a user
	// without bindings may not list ws-1's members (denied).
	get := func(principal, path string) int {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("X-NMP-Principal-Id", principal)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, resp.Body)
		return resp.StatusCode
	}
	if code := get(scalefixture.ProbePrincipal, "/apis/entities/v2/workspaces/"+scalefixture.ProbeWorkspace); code != http.StatusOK {
		t.Fatalf("probe request: status %d", code)
	}
	decided := time.Since(start)
	startCPU := cpuSeconds(t, cmd.Process.Pid)
	if code := get("nobody@example.com", "/apis/entities/v2/workspaces/ws-1/members"); code != http.StatusForbidden {
		t.Fatalf("unbound principal: status %d, want 403", code)
	}
	afterLoad := procStatus(t, cmd.Process.Pid)
	heap := metric(t, client, base, "go_memstats_heap_alloc_bytes")
	cpu0 := cpuSeconds(t, cmd.Process.Pid)
	time.Sleep(idle)
	idleCPU := cpuSeconds(t, cmd.Process.Pid) - cpu0
	afterIdle := procStatus(t, cmd.Process.Pid)
	t.Logf("run %d, %d bindings: ready %.2fs, first decision %.2fs (server CPU to first decision %.2fs); "+
		"after load VmRSS %s VmHWM %s Go heap %.0f MB; idle %v: CPU %.2fs (%.2f%% of a core), then VmRSS %s VmHWM %s",
		run, n, ready.Seconds(), decided.Seconds(), startCPU, afterLoad["VmRSS"], afterLoad["VmHWM"], heap/1e6,
		idle, idleCPU, 100*idleCPU/idle.Seconds(), afterIdle["VmRSS"], afterIdle["VmHWM"])
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	i, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || i <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return i
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, ln)
	return ln.Addr().(*net.TCPAddr).Port
}

// procStatus returns the memory lines of /proc/<pid>/status ("VmRSS" ->
// "123456 kB"), rendered in MB.
func procStatus(t *testing.T, pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Vm") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseFloat(f[0], 64)
			out[k] = fmt.Sprintf("%.0f MB", kb*1024/1e6)
		}
	}
	return out
}

// cpuSeconds is utime+stime of the process (/proc/<pid>/stat fields 14
// and 15, in clock ticks of 1/100 s).
func cpuSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may contain spaces; count after ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// metric reads one unlabelled gauge from /metrics.
func metric(t *testing.T, client *http.Client, base, name string) float64 {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
