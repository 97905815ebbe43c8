package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/version"
)

// TestUserAgentTransport: requests without a User-Agent get nmp/<version>;
// an explicit one is kept; the caller's request is not modified.
func TestUserAgentTransport(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("User-Agent"))
	}))
	defer srv.Close()
	c := NewIdPClient(5*time.Second, nil)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if req.Header.Get("User-Agent") != "" {
		t.Fatal("the caller's request was modified")
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("User-Agent", "custom/1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if want := "nmp/" + version.Version; len(got) != 2 || got[0] != want || got[1] != "custom/1" {
		t.Fatalf("User-Agents %q, want [%s custom/1]", got, want)
	}
}

// TestDiscoveryUserAgentAndTrailingSlash: discovery requests carry the
// User-Agent even with a plain client, and an issuer differing only by a
// trailing slash is named so (still ErrIssuerMismatch).
func TestDiscoveryUserAgentAndTrailingSlash(t *testing.T) {
	var ua string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua = r.Header.Get("User-Agent")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + "/"})
	}))
	defer srv.Close()
	_, err := FetchProviderMetadata(context.Background(), &http.Client{}, srv.URL)
	if !errors.Is(err, ErrIssuerMismatch) || !strings.Contains(err.Error(), "only by a trailing slash") {
		t.Fatalf("err %v", err)
	}
	if ua != UserAgent() {
		t.Fatalf("User-Agent %q", ua)
	}
	_, err = FetchProviderMetadata(context.Background(), &http.Client{}, srv.URL+"/other")
	if !errors.Is(err, ErrIssuerMismatch) || strings.Contains(err.Error(), "trailing slash") {
		t.Fatalf("unrelated issuer: %v", err)
	}
}

// TestTokenErrorDescription: every reason has a fixed phrase without
// characters RFC 6750 forbids; unknown ones a generic phrase.
func TestTokenErrorDescription(t *testing.T) {
	for reason, d := range tokenDescriptions {
		if d == "" || strings.ContainsAny(d, "\"\\") || strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Errorf("%s: %q", reason, d)
		}
	}
	if TokenErrorDescription("id_token_not_accepted") != "ID tokens are not accepted; send an access token" ||
		TokenErrorDescription("no-such-reason") != "invalid token" {
		t.Fatal("descriptions")
	}
}
