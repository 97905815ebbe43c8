//go:build faults

package faulttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// faultOutcome is what a fault run measured.
type faultOutcome struct {
	readyFailed bool          // /health/ready failed at least once during the fault
	recovery    time.Duration // from the end of the fault to ready and a store request served
}

// faultRun drives the load for d: the fault starts at d/3 (inject) and
// ends at 2d/3 (heal); 503 with Retry-After (and 507) are accepted from
// inject until the server has recovered by itself, after which the load
// runs at least one more second and every answer must be right again.
func faultRun(t *testing.T, l *load, p *proc, d time.Duration, inject, heal func()) faultOutcome {
	return faultRunProbe(t, l, p, d, inject, heal, func() (int, error) {
		st, _, _, err := l.do(adminEmail, http.MethodGet, "/apis/entities/v2/workspaces/"+wsName(0)+"/projects", nil)
		return st, err
	}, http.StatusOK)
}

// faultRunProbe is faultRun with the request that shows recovery (it
// must answer want).
func faultRunProbe(t *testing.T, l *load, p *proc, d time.Duration, inject, heal func(), probe func() (int, error), want int) faultOutcome {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out faultOutcome
	wallc := make(chan time.Duration, 1)
	go func() { wallc <- l.run(ctx) }()
	start := time.Now()
	<-time.After(d / 3)
	l.faulty.Store(true)
	inject()
	for time.Since(start) < 2*d/3 {
		if !p.ready() {
			out.readyFailed = true
		}
		<-time.After(50 * time.Millisecond)
	}
	heal()
	healed := time.Now()
	if _, err := p.waitReady(2 * time.Minute); err != nil {
		cancel()
		<-wallc
		t.Fatalf("no recovery: %v", err)
	}
	for {
		st, err := probe()
		if err == nil && st == want {
			break
		}
		if time.Since(healed) > 2*time.Minute {
			cancel()
			<-wallc
			t.Fatalf("store requests still fail 2 minutes after the fault ended: %d %v", st, err)
		}
		<-time.After(20 * time.Millisecond)
	}
	out.recovery = time.Since(healed)
	// Requests already in flight may still carry the fault's answer:
	// they end within the operation timeout.
	<-time.After(statementTimeout*time.Second + 500*time.Millisecond)
	l.faulty.Store(false)
	if rest := d - time.Since(start); rest > time.Second {
		<-time.After(rest)
	} else {
		<-time.After(time.Second)
	}
	cancel()
	wall := <-wallc
	l.report(t.Name(), wall)
	t.Logf("fault outcome: /health/ready failed during the fault: %v; recovery %v after the fault ended", out.readyFailed, out.recovery.Round(time.Millisecond))
	return out
}

// pgServer starts nmp on a fresh PostgreSQL schema whose connections carry
// a unique application_name, returned with the admin URL.
func pgServer(t *testing.T, iss *oidctest.Issuer) (*proc, string, string) {
	u, err := url.Parse(pgtest.SchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf("nmp-faulttest-%d", time.Now().UnixNano())
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	p := startServer(t, serverOptions{dataDir: t.TempDir(), dbURL: u.String(), issuer: iss})
	return p, os.Getenv("NMP_TEST_POSTGRES_URL"), app
}

// TestPostgresConnectionsKilled: the server's PostgreSQL connections are
// killed (pg_terminate_backend) over and over under load. Store requests
// get 503 with Retry-After or succeed, never 500 or a hang; decisions go
// on; everything recovers by itself and every acknowledged write is
// there, whole.
func TestPostgresConnectionsKilled(t *testing.T) {
	iss := oidctest.New(t)
	p, admin, app := pgServer(t, iss)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	l := newLoad(t, p.url, iss, 10*time.Second)
	l.setup()
	stop := make(chan struct{})
	done := make(chan struct{})
	var killed atomic.Int64
	out := faultRun(t, l, p, duration(t, 4*time.Second), func() {
		go func() {
			defer close(done)
			for {
				var n int64
				if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
					t.Errorf("pg_terminate_backend: %v", err)
					return
				}
				killed.Add(n)
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}, func() { close(stop); <-done })
	t.Logf("%d backend connections killed", killed.Load())
	if killed.Load() == 0 {
		t.Error("no connection was killed: the fault did not happen")
	}
	_ = out
	if lost := l.verify(); lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// TestIdPDown: the IdP goes down after the server fetched its keys once.
// Cached keys keep validating under load (0 errors), the discovery
// endpoint serves its stale copy, and a token from an unknown key is
// refused (nothing fails open).
func TestIdPDown(t *testing.T) {
	iss := oidctest.New(t)
	p := startServer(t, serverOptions{dataDir: t.TempDir(), issuer: iss})
	l := newLoad(t, p.url, iss, 10*time.Second)
	l.setup()
	discovery := func() (int, string) {
		resp, err := http.Get(p.url + "/apis/auth/discovery")
		if err != nil {
			t.Fatal(err)
		}
		defer testenv.Close(t, resp.Body)
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	st, before := discovery()
	if st != http.StatusOK || !strings.Contains(before, iss.URL) {
		t.Fatalf("discovery before the IdP went down: %d %s", st, before)
	}
	iss.Close()
	ctx, cancel := context.WithTimeout(context.Background(), duration(t, 3*time.Second))
	defer cancel()
	wall := l.run(ctx)
	l.report(t.Name(), wall)
	st, after := discovery()
	t.Logf("discovery with the IdP down: %d %s", st, after)
	if st != http.StatusOK || !strings.Contains(after, iss.URL+"/token") {
		t.Errorf("discovery with the IdP down: %d %s, want the stale copy naming %s/token", st, after, iss.URL)
	}
	// A token signed by another key (another issuer's) is refused.
	other := oidctest.New(t)
	forged := other.Mint(t, oidctest.Claims{Subject: "sub-" + adminEmail, Email: adminEmail, Scope: "openid platform:read"})
	l.tokens["forged"] = forged
	if st, _, b, err := l.do("forged", http.MethodGet, "/apis/entities/v2/workspaces", nil); err != nil || st != http.StatusUnauthorized {
		t.Errorf("token from an unknown key with the IdP down: %d %s %v, want 401", st, b, err)
	}
	if lost := l.verify(); lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// TestExternalOPAStopped: the external OPA is killed under load. Every
// decision it cannot make is a 503, never an allow; after OPA restarts
// (and reloads nmp's bundle) everything recovers by itself.
func TestExternalOPAStopped(t *testing.T) {
	iss := oidctest.New(t)
	port := freePort(t)
	cfgFile := filepath.Join(t.TempDir(), "opa.yaml")
	if err := os.WriteFile(cfgFile, []byte(opatest.DocumentedConfig(t, fmt.Sprintf("http://127.0.0.1:%d", port))), 0o600); err != nil {
		t.Fatal(err)
	}
	o := opatest.Start(t, "--config-file", cfgFile)
	p := startServer(t, serverOptions{dataDir: t.TempDir(), issuer: iss, port: port, extraAuth: fmt.Sprintf(
		"  trusted_proxies: [\"127.0.0.1/32\"]\n  policy_decision_point_provider: opa\n  policy_decision_point_base_url: %q\n  policy_decision_point_request_timeout_seconds: 1\n", o.URL)})
	o.WaitHealthy("/health?bundles")
	l := newLoad(t, p.url, iss, 10*time.Second)
	l.setup()
	// Once OPA is dead, a decision it would make is a 503 at once. The
	// load's own requests may all be member writes waiting for OPA to
	// agree at that moment (a short run's fault lasts about a second),
	// so the test asks itself rather than count on the load.
	kill := func() {
		o.Kill()
		st, _, b, err := l.do(adminEmail, http.MethodGet, "/apis/entities/v2/workspaces/"+wsName(0), nil)
		if err != nil || st != http.StatusServiceUnavailable {
			t.Errorf("a decision with OPA killed: %d %s %v, want 503", st, b, err)
		}
	}
	faultRun(t, l, p, duration(t, 4*time.Second), kill, func() {
		o.Restart()
		o.WaitHealthy("/health?bundles")
	})
	t.Logf("load requests answered 503 while OPA was down: %d", l.unavailable.Load())
	if lost := l.verify(); lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// TestSQLiteDiskFull: SQLite's file system (a 16 MB tmpfs made by
// the test) fills up under load. Writes get 507 insufficient_storage, reads
// keep working; once space returns writes work again, and afterwards
// the database passes PRAGMA integrity_check and every acknowledged
// write is there.
func TestSQLiteDiskFull(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "mounting a size-limited tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "tmpfs mount", fmt.Sprintf("mount -t tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	iss := oidctest.New(t)
	p := startServer(t, serverOptions{dataDir: dir, issuer: iss})
	l := newLoad(t, p.url, iss, 10*time.Second)
	l.setup()
	filler := filepath.Join(dir, "filler")
	var full507, readsOK atomic.Int64
	writeProbe := func() (int, error) {
		st, _, _, err := l.do(editorEmail(1), http.MethodPost, "/apis/entities/v2/workspaces/"+wsName(1)+"/projects",
			map[string]string{"name": fmt.Sprintf("probe-%d", time.Now().UnixNano())})
		return st, err
	}
	out := faultRunProbe(t, l, p, duration(t, 4*time.Second), func() {
		fill(t, filler)
		// Probe until a write is refused for want of space: the load's
		// own writes fill what SQLite still had in hand.
		deadline := time.Now().Add(20 * time.Second)
		for full507.Load() == 0 && time.Now().Before(deadline) {
			st, _, b, err := l.do(editorEmail(0), http.MethodPost, "/apis/entities/v2/workspaces/"+wsName(0)+"/projects",
				map[string]string{"name": fmt.Sprintf("probe-%d", time.Now().UnixNano())})
			switch {
			case err != nil:
				t.Errorf("write on a full disk: %v", err)
				return
			case st == http.StatusInsufficientStorage:
				full507.Add(1)
			case st == http.StatusCreated: // SQLite still had room
			default:
				t.Errorf("write on a full disk: %d %s, want 507", st, b)
				return
			}
		}
		for i := 0; i < 20; i++ {
			if st, _, _, err := l.do(editorEmail(0), http.MethodGet, "/apis/entities/v2/workspaces/"+wsName(0)+"/projects", nil); err == nil && st == http.StatusOK {
				readsOK.Add(1)
			}
		}
	}, func() {
		if err := os.Remove(filler); err != nil {
			t.Error(err)
		}
	}, writeProbe, http.StatusCreated)
	_ = out
	if full507.Load() == 0 {
		t.Error("no write got 507 on the full disk")
	}
	if readsOK.Load() != 20 {
		t.Errorf("%d of 20 reads worked on the full disk, want all", readsOK.Load())
	}
	if lost := l.verify(); lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
	p.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "entities.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check after the disk was full: %q %v", integrity, err)
	}
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("fill: %v", err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Error(err)
	}
}
