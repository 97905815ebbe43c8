package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
)

// TestShutdownUnderLoad stops a server while clients read and change
// memberships: every background component (database health check, policy
// syncer and its change feed) has returned before the store is closed —
// the store records any use after Close — and no goroutine is left.
func TestShutdownUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st := openFaulty(t)
	cfg := config.Default()
	cfg.Platform.DataDir = filepath.Join(t.TempDir(), "data")
	devMode(cfg)
	cfg.Entities.DBHealthCheckIntervalSeconds = 1
	cfg.Auth.PolicyDataRefreshInterval = 0.001
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	base := "http://" + ln.Addr().String()
	transport := &http.Transport{}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	send := func(method, path, body string) error {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-NMP-Principal-Id", "root@example.com")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := send("POST", "/v2/workspaces", `{"name":"load"}`); err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				p := fmt.Sprintf("user-%d-%d", w, i%3)
				var err error
				switch i % 3 {
				case 0:
					err = send("POST", "/v2/workspaces/load/members", `{"principal":"`+p+`","roles":["Viewer"]}`)
				case 1:
					err = send("GET", "/v2/workspaces", "")
				default:
					err = send("DELETE", "/v2/workspaces/load/members/"+p, "")
				}
				if err != nil { // the server is gone
					return
				}
				if done.Add(1) == 60 {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("the load never got going")
	}
	cancel() // stop under load
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wg.Wait()
	transport.CloseIdleConnections()
	if !st.closed.Load() {
		t.Fatal("the store was not closed")
	}
	if n := st.usedAfterClose.Load(); n != 0 {
		t.Fatalf("the store was used %d times after Close", n)
	}
}
