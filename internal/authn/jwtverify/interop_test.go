package jwtverify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/nmp-project/nmp/internal/testenv"
)

// jwtClientStorage is zitadel's example storage, except that its
// client-credentials client gets JWT access tokens: every client of the
// example storage is op.AccessTokenTypeBearer (opaque tokens), and Client
// fields are unexported, so the client is wrapped rather than rebuilt.
type jwtClientStorage struct{ *storage.Storage }

func (s jwtClientStorage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.Storage.ClientCredentials(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return jwtAccessTokens{c}, nil
}

type jwtAccessTokens struct{ op.Client }

func (jwtAccessTokens) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// startZitadelOP serves zitadel/oidc's example OP (exampleop.SetupServer
// with the example storage) on httptest 127.0.0.1; the issuer is the
// server's URL.
func startZitadelOP(t *testing.T) *httptest.Server {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	st := jwtClientStorage{storage.NewStorage(storage.NewUserStore(srv.URL))}
	router := http.Handler(exampleop.SetupServer(srv.URL, st, nil, false))
	h.Store(&router)
	return srv
}

// clientCredentialsToken runs the client_credentials grant for the
// example service user sid1 against the OP's discovered token endpoint.
func clientCredentialsToken(t *testing.T, issuer string) string {
	t.Helper()
	var disc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	getJSON(t, http.DefaultClient.Get, issuer+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != issuer || disc.TokenEndpoint == "" || disc.JWKSURI == "" {
		t.Fatalf("unexpected discovery document %+v", disc)
	}
	req, err := http.NewRequest(http.MethodPost, disc.TokenEndpoint,
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"openid platform:read"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sid1", "verysecret") // the example storage's service user
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", body, err)
	}
	if strings.Count(tr.AccessToken, ".") != 2 {
		t.Fatal("the OP issued an opaque access token, not a JWT")
	}
	return tr.AccessToken
}

func getJSON(t *testing.T, get func(string) (*http.Response, error), u string, v any) {
	t.Helper()
	resp, err := get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestInteropZitadelOP verifies access tokens minted by an OIDC provider
// nobody here wrote: zitadel/oidc v3's example OP, served on 127.0.0.1.
//
// Covered: zitadel's discovery document (issuer equal to the configured
// one, jwks_uri at /keys) found from the issuer; its JWKS encoding (RSA
// 2048 key, use=sig, alg=RS256, UUID kid); JWT access tokens exactly as
// zitadel's op.CreateJWT signs them (iss, sub, aud as an array, exp, iat,
// nbf, jti, client_id) obtained through a real client_credentials grant
// over HTTP; the real clock; and refusal of the same OP's tokens when
// they are tampered with or the audience is not ours. The only non-zitadel
// piece is the wrapper that makes the example's client-credentials client
// (sid1) issue JWT instead of opaque access tokens.
//
// Not covered: scope, groups and email claims (zitadel's client
// credentials JWT carries none), algorithms other than RS256, and
// rotation of the OP's signing key.
func TestInteropZitadelOP(t *testing.T) {
	srv := startZitadelOP(t)
	token := clientCredentialsToken(t, srv.URL)

	var hdr struct{ Alg, Kid string }
	if raw, err := b64.DecodeString(part(token, 0)); err != nil || json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "RS256" || hdr.Kid == "" {
		t.Fatalf("unexpected zitadel token header %+v", hdr)
	}

	cfg := authConfig(srv.URL)
	cfg.OIDC.ClientID = "sid1" // zitadel puts the client id in aud
	v, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Validate(context.Background(), token)
	if err != nil {
		t.Fatalf("zitadel access token refused: %v", err)
	}
	if p.ID != "sid1" {
		t.Fatalf("principal %+v, want sid1", p)
	}

	t.Run("tampered", func(t *testing.T) {
		bad := replacePart(token, 2, tamperMiddle(part(token, 2)))
		wantReason(t, v, bad, ReasonBadSignature)
	})
	t.Run("audience not ours", func(t *testing.T) {
		other := authConfig(srv.URL)
		v2, err := New(other, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		wantReason(t, v2, token, ReasonAudienceMismatch)
	})
	t.Run("issuer not configured", func(t *testing.T) {
		v3, err := New(authConfig("https://idp.example.com"), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		wantReason(t, v3, token, ReasonUnknownIssuer)
	})
}
