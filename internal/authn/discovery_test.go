package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
