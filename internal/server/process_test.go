package server_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestMain doubles as a real server process: the tests below re-execute
// the test binary with NMP_TEST_CHILD_SERVER=1 so that they can kill it.
func TestMain(m *testing.M) {
	if os.Getenv("NMP_TEST_CHILD_SERVER") == "1" {
		os.Exit(childServer())
	}
	os.Exit(m.Run())
}

func childServer() int {
	cfg, _, err := config.Load(config.LoadOptions{Environ: os.Environ()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	if err := s.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type child struct {
	cmd *exec.Cmd
	url string
}

func startChild(t *testing.T, dataDir string) *child {
	t.Helper()
	stderr := io.Discard
	if testing.Verbose() {
		stderr = os.Stderr
	}
	return startChildLogging(t, dataDir, stderr)
}

// startChildLogging is startChild with the child's log written to stderr.
func startChildLogging(t *testing.T, dataDir string, stderr io.Writer) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NMP_TEST_CHILD_SERVER=1", "NMP_DATA_DIR="+dataDir, "NMP_SERVICE_SHUTDOWN_TIMEOUT_SECONDS=10")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "LISTEN ") {
		t.Fatalf("child did not start: %q %v", line, err)
	}
	return &child{cmd: cmd, url: "http://" + strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))}
}

func post(url, body string) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, errors.Join(err, resp.Body.Close())
}

// TestSIGKILLDuringMemberWrites kills the server in the middle of a burst
// of member writes: the store must open cleanly afterwards, every
// acknowledged write must be there, and every write must be whole (both
// roles of a two-role grant, or neither) with its audit event (the
// member and its event, or neither).
func TestSIGKILLDuringMemberWrites(t *testing.T) {
	dataDir := t.TempDir()
	c := startChild(t, dataDir)
	ws := c.url + "/apis/entities/v2/workspaces"
	if st, err := post(ws, `{"name": "crash"}`); err != nil || st != 201 {
		t.Fatalf("create workspace: %d %v", st, err)
	}
	var acked sync.Map
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("user-%d-%d", w, i)
				sent.Add(1)
				st, err := post(ws+"/crash/members", `{"principal": "`+p+`", "roles": ["Viewer", "Editor"]}`)
				if err == nil && st == 201 {
					acked.Store(p, true)
				}
			}
		}()
	}
	// Let the burst run, then kill without warning.
	deadline := time.Now().Add(5 * time.Second)
	for sent.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()

	dbPath := filepath.Join(dataDir, "entities.db")
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	stored := countBy(t, db, `SELECT principal, count(*) FROM role_bindings WHERE workspace = 'crash' AND revoked_at IS NULL AND principal LIKE 'user-%' GROUP BY principal`)
	for p, n := range stored {
		if n != 2 {
			t.Errorf("member %s has %d of 2 role bindings: a write was torn", p, n)
		}
	}
	// The audit trail: every member visible afterwards has its one
	// member.create event, and every such event its member (both or
	// neither).
	audited := countBy(t, db, `SELECT target, count(*) FROM audit_events WHERE workspace = 'crash' AND action = 'member.create'
		AND target LIKE 'user-%' GROUP BY target`)
	for p := range stored {
		if audited[p] != 1 {
			t.Errorf("member %s is stored with %d member.create audit events, want 1", p, audited[p])
		}
	}
	for p := range audited {
		if _, ok := stored[p]; !ok {
			t.Errorf("audit event of member %s whose write is not stored", p)
		}
	}
	ackedCount := 0
	acked.Range(func(k, _ any) bool {
		ackedCount++
		if stored[k.(string)] != 2 {
			t.Errorf("acknowledged member %s is missing after the crash", k)
		}
		return true
	})
	var rev, maxRev int64
	if err := db.QueryRow(`SELECT revision FROM policy_state`).Scan(&rev); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT max(revision) FROM role_bindings`).Scan(&maxRev); err != nil {
		t.Fatal(err)
	}
	if rev != maxRev {
		t.Errorf("policy revision %d does not match the newest binding's %d", rev, maxRev)
	}
	if ackedCount == 0 {
		t.Fatal("no write was acknowledged before the kill; the test proved nothing")
	}
	t.Logf("%d writes sent, %d acknowledged, %d stored", sent.Load(), ackedCount, len(stored))

	// The store reopens through the normal path and the server starts again.
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: "sqlite://" + dbPath, Migrate: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close the reopened store: %v", err)
	}
	c2 := startChild(t, dataDir)
	if st, err := post(c2.url+"/apis/entities/v2/workspaces/crash/members", `{"principal": "after-crash"}`); err != nil || st != 201 {
		t.Fatalf("write after restart: %d %v", st, err)
	}
}

// countBy runs a query of (key, count) rows and returns them as a map.
func countBy(t *testing.T, db *sql.DB, q string) map[string]int {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

// logWatch collects a child's log and lets a test wait for a line.
type logWatch struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// waitFor returns once the log holds s, or fails the test after timeout.
func (l *logWatch) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		found, ch := strings.Contains(l.buf.String(), s), l.changed
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the child never logged %q", s)
		}
	}
}

// TestGracefulShutdown sends SIGTERM while a request is in flight — its
// handler is reading the body (the server sent 100 Continue) — and
// finishes the request only once the server has stopped accepting
// connections: the request still completes and is stored, and the
// process exits 0 after closing the store.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	logs := newLogWatch()
	c := startChildLogging(t, dataDir, logs)
	addr := strings.TrimPrefix(c.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, conn)
	body := `{"name": "in-flight"}`
	if _, err := fmt.Fprintf(conn, "POST /apis/entities/v2/workspaces HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue once the handler reads the body: %v %v", cont, err)
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "shutting down", 10*time.Second)
	// Shutdown has begun: the listener closes (new connections are
	// refused) while the request above is still unfinished.
	for deadline := time.Now().Add(10 * time.Second); ; {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		_ = nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after SIGTERM")
		}
		runtime.Gosched()
	}

	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %v %v, want 201", resp, err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "entities.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM workspaces WHERE name = 'in-flight'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the in-flight request's workspace after shutdown: %d %v", n, err)
	}
}

// TestDataFilesAreOwnerOnly: the data dir is 0700 and the database files
// 0600, whatever the umask.
func TestDataFilesAreOwnerOnly(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	c := startChild(t, dataDir)
	if st, err := post(c.url+"/apis/entities/v2/workspaces", `{"name": "perm"}`); err != nil || st != 201 {
		t.Fatalf("write: %d %v", st, err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v %v", fi.Mode(), err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("data dir: %v", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode())
		}
	}
}
