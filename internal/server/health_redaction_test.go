package server_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// pgProxy forwards TCP connections to target until closed; closing it
// closes its port and every forwarded connection (the database becomes
// unreachable).
type pgProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *pgProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestPublicHealthNamesNoDatabaseDetail: when PostgreSQL becomes
// unreachable, /health/ready and /status say so in generic words and
// never echo the driver's error (host, port, user, database); the log
// has the detail.
func TestPublicHealthNamesNoDatabaseDetail(t *testing.T) {
	u, err := url.Parse(servertest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	_, proxyPort, _ := net.SplitHostPort(proxy.ln.Addr().String())
	u.Host = proxy.ln.Addr().String()
	srv := servertest.Start(t, func(c *config.Config) {
		c.Entities.DatabaseConfig.URL = u.String()
		c.Auth.PolicyDataRefreshInterval = 1
	})
	srv.WaitReady(t)

	proxy.Close() // the port is closed: every new connection is refused
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Server.Health().WaitFor(ctx, func(_ bool, reasons []string) bool {
		return strings.Contains(strings.Join(reasons, ";"), "database")
	}); err != nil {
		t.Fatal(err)
	}
	secrets := []string{proxyPort, u.User.Username(), "host=", "user=", "dial", "refused", strings.TrimPrefix(u.Path, "/")}
	for _, path := range []string{"/health/ready", "/status"} {
		body := readBody(t, srv.URL+path)
		if !strings.Contains(string(body), "database unreachable") {
			t.Errorf("%s: %s, want the generic reason %q", path, body, "database unreachable")
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(body), s) {
				t.Errorf("%s echoes %q: %s", path, s, body)
			}
		}
	}
	if !strings.Contains(srv.Logs(), proxyPort) {
		t.Errorf("the log lacks the database error's detail (port %s)", proxyPort)
	}
}

// readBody GETs url and returns the body, whatever the status.
func readBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := servertest.Client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
