// Package nginxtest runs a real nginx for tests: found on PATH or in
// /usr/sbin, skipped when missing (a failure with NMP_TEST_REQUIRE_ALL=1,
// see testenv.Missing).
package nginxtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/testenv"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, ln)
	return ln.Addr().String()
}

// Start runs nginx with the configuration render returns for its working
// directory prefix and listen address (host:port), waits until it accepts
// connections and returns its URL ("http://" + listen). It stops at test
// cleanup; a missing nginx skips the test (testenv.Missing).
func Start(t testing.TB, render func(prefix, listen string) (string, error)) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		testenv.Missing(t, "nginx", "not on PATH or in /usr/sbin")
	}
	prefix := t.TempDir()
	listen := FreeAddr(t)
	conf, err := render(prefix, listen)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confFile, "-e", filepath.Join(prefix, "error.log"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			testenv.Close(t, c)
			return "http://" + listen
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s\n%s", err, out, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
