//go:build faults

package faulttest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
)

// TestPostgresRestart stops the machine's PostgreSQL server under load
// and starts it again (pg_ctlcluster, as root). It runs only with the
// build tag faults: stopping the shared server would break other tests
// running at the same time. While the server is down, requests that need
// the store get 503 with Retry-After (never 500, never a hang past the
// operation timeout), decisions go on from the last policy snapshot
// (denials keep being answered), /health/ready fails; afterwards
// everything recovers by itself and every acknowledged write is there,
// whole.
func TestPostgresRestart(t *testing.T) {
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) != 1 || os.Geteuid() != 0 {
		t.Fatalf("needs root and one PostgreSQL cluster under /etc/postgresql (%v)", err)
	}
	version := versions[0].Name()
	ctl := func(action string) {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, "-m", "fast").CombinedOutput()
		if action == "start" {
			out, err = exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action).CombinedOutput()
		}
		if err != nil && !strings.Contains(string(out), "already running") {
			t.Errorf("pg_ctlcluster %s: %v %s", action, err, out)
		}
	}
	t.Cleanup(func() { ctl("start") })
	iss := oidctest.New(t)
	p, _, _ := pgServer(t, iss)
	l := newLoad(t, p.url, iss, 10*time.Second)
	l.setup()
	out := faultRun(t, l, p, duration(t, 6*time.Second), func() { ctl("stop") }, func() { ctl("start") })
	if !out.readyFailed {
		t.Error("/health/ready never failed while PostgreSQL was down")
	}
	if l.unavailable.Load() == 0 {
		t.Error("no request got 503 while PostgreSQL was down")
	}
	if l.faultDenials.Load() == 0 {
		t.Error("no denial was decided while PostgreSQL was down: decisions did not go on from the snapshot")
	}
	if lost := l.verify(); lost > 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}
