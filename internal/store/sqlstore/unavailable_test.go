package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
)

// proxy is a TCP forwarder on 127.0.0.1:0 in front of PostgreSQL, so
// that a test can cut the database off (refuse and drop connections) or
// make it hang (accept and never answer) without touching the server.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	hang   bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			hang := p.hang
			p.mu.Unlock()
			if hang {
				continue // accepted, never answered
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

// dropAll closes every open connection; new ones hang when hang is set.
func (p *proxy) dropAll(hang bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hang = hang
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// cut closes the listener (connections are refused) and every connection.
func (p *proxy) cut() {
	_ = p.ln.Close()
	p.dropAll(false)
}

func proxiedStore(t *testing.T, timeout time.Duration) (*sqlstore.Guarded, *proxy) {
	u, err := url.Parse(pgtest.SchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqlstore.Options{URL: u.String(), MaxConns: 4, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g := sqlstore.Guard(st, timeout)
	if err := g.EnsureBuiltins(ctx, store.Seed{}); err != nil {
		t.Fatal(err)
	}
	return g, p
}

// TestUnavailableDatabase: a store operation on a database that went away
// (connections dropped then refused, or a database that accepts and never
// answers) fails with store.ErrUnavailable within the operation timeout,
// never with an unclassified error or a hang.
func TestUnavailableDatabase(t *testing.T) {
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name string
		cut  func(p *proxy)
	}{
		{"connections dropped and refused", func(p *proxy) { p.cut() }},
		{"connections dropped, new ones hang", func(p *proxy) { p.dropAll(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, p := proxiedStore(t, timeout)
			ctx := context.Background()
			if _, _, err := g.CreateWorkspace(ctx, store.NewWorkspace{Name: "before"}); err != nil {
				t.Fatal(err)
			}
			tt.cut(p)
			ops := map[string]func() error{
				"read": func() error { _, err := g.GetWorkspace(ctx, "before"); return err },
				"write": func() error {
					_, _, err := g.CreateWorkspace(ctx, store.NewWorkspace{Name: "after"})
					return err
				},
			}
			for name, op := range ops {
				start := time.Now()
				err := op()
				took := time.Since(start)
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s: error %v, want store.ErrUnavailable", name, err)
				}
				if took > timeout+2*time.Second {
					t.Errorf("%s: took %v, past the %v operation timeout", name, took, timeout)
				}
			}
		})
	}
}

// TestUnavailableDatabaseCallerCancel: a caller that goes away gets its
// own cancellation back, not store.ErrUnavailable.
func TestUnavailableDatabaseCallerCancel(t *testing.T) {
	g, p := proxiedStore(t, time.Minute)
	p.dropAll(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.GetWorkspace(ctx, "x")
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("error %v, want the caller's cancellation", err)
	}
}
