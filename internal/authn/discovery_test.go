package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiscoveryCache(t *testing.T) {
	var hits atomic.Int32
	var issuer string
	up := atomic.Bool{}
	up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		hits.Add(1)
		if err := json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token"}); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	now := time.Unix(1_000_000, 0)
	c := &DiscoveryCache{Issuer: issuer, TTL: time.Minute, Client: srv.Client(), Now: func() time.Time { return now }}
	ctx := context.Background()

	tests := []struct {
		name      string
		advance   time.Duration
		up        bool
		wantHits  int32
		wantErr   bool
		wantToken string
	}{
		{"first fetch", 0, true, 1, false, issuer + "/token"},
		{"cached within the TTL", 30 * time.Second, true, 1, false, issuer + "/token"},
		{"refetched after the TTL", time.Minute, true, 2, false, issuer + "/token"},
		{"IdP down: last good copy with an error", 2 * time.Minute, false, 2, true, issuer + "/token"},
		{"IdP back", time.Second, true, 3, false, issuer + "/token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			up.Store(tc.up)
			md, err := c.Get(ctx)
			if (err != nil) != tc.wantErr || md == nil || md.TokenEndpoint != tc.wantToken || hits.Load() != tc.wantHits {
				t.Fatalf("md %+v err %v hits %d", md, err, hits.Load())
			}
		})
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewEncoder(w).Encode(map[string]string{"issuer": "https://evil.example"}); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	c := &DiscoveryCache{Issuer: srv.URL, Client: srv.Client(), Now: time.Now}
	if md, err := c.Get(context.Background()); err == nil || md != nil {
		t.Fatalf("a document naming another issuer was accepted: %+v", md)
	}
}

// A document naming another issuer is never served or cached, also when a
// good copy is at hand: the good copy is served with the error.
func TestDiscoveryIssuerMismatchKeepsLastGoodCopy(t *testing.T) {
	var issuer string
	var evil atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token"}
		if evil.Load() {
			doc = map[string]string{"issuer": "https://evil.example", "token_endpoint": "https://evil.example/token"}
		}
		if err := json.NewEncoder(w).Encode(doc); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	c := &DiscoveryCache{Issuer: issuer, Client: srv.Client(), Now: time.Now} // TTL 0: fetch every time
	ctx := context.Background()
	if md, err := c.Get(ctx); err != nil || md.TokenEndpoint != issuer+"/token" {
		t.Fatalf("first fetch: %+v %v", md, err)
	}
	evil.Store(true)
	for range 2 {
		md, err := c.Get(ctx)
		if !errors.Is(err, ErrIssuerMismatch) || md == nil || md.TokenEndpoint != issuer+"/token" {
			t.Fatalf("after the issuer changed: %+v %v", md, err)
		}
	}
}

// TestDiscoveryCacheFailingIdP: concurrent callers against a slow,
// failing IdP share one fetch and none holds a lock across it (a caller
// whose context ended returns at once); the last good copy is served
// while a refresh fails; after a failure the IdP is not asked again
// before the gap.
func TestDiscoveryCacheFailingIdP(t *testing.T) {
	var hits atomic.Int32
	var issuer string
	var failing atomic.Bool
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			entered <- struct{}{}
			<-release
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if err := json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token"}); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	c := &DiscoveryCache{Issuer: issuer, TTL: time.Minute, MinGap: 10 * time.Second, Client: srv.Client(), Now: clock}
	ctx := context.Background()
	if _, err := c.Get(ctx); err != nil {
		t.Fatal(err)
	}

	advance(2 * time.Minute) // past the TTL
	failing.Store(true)
	const n = 20
	type result struct {
		md  *ProviderMetadata
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			md, err := c.Get(ctx)
			results <- result{md, err}
		}()
	}
	<-entered // one fetch is in flight
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if md, err := c.Get(cancelled); !errors.Is(err, context.Canceled) || md == nil {
		t.Fatalf("a cancelled caller during the fetch: %+v %v, want the last copy and context.Canceled at once", md, err)
	}
	close(release)
	for range n {
		r := <-results
		if r.err == nil || r.md == nil || r.md.TokenEndpoint != issuer+"/token" {
			t.Fatalf("during the failing refresh: %+v %v, want the last good copy with an error", r.md, r.err)
		}
	}
	if got := hits.Load(); got != 2 {
		t.Fatalf("IdP asked %d times, want 2 (the first fetch and one shared refresh)", got)
	}

	advance(9 * time.Second) // within the gap
	if md, err := c.Get(ctx); err == nil || md == nil || hits.Load() != 2 {
		t.Fatalf("within the gap: %+v %v hits %d, want the last copy, an error and no fetch", md, err, hits.Load())
	}
	failing.Store(false)
	advance(time.Second) // the gap has passed
	if md, err := c.Get(ctx); err != nil || md == nil || hits.Load() != 3 {
		t.Fatalf("after the gap: %+v %v hits %d, want a fresh fetch", md, err, hits.Load())
	}
}
