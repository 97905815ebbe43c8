package introspect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/jwtverify"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/testenv"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	clientID = "nmp-server"
	// secret has characters RFC 6749 §2.3.1 requires to be form-encoded
	// before Basic authentication.
	secret = "s3cr:t+/=%ünïque-Secret-Value"
)

// idp is an OIDC provider on 127.0.0.1 with an RFC 7662 introspection
// endpoint that requires HTTP Basic client authentication.
type idp struct {
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]map[string]any // active tokens → introspection answer
	status   int                       // non-zero: every introspection answers it
	body     string                    // non-empty: raw introspection answer
	down     bool                      // close connections
	noEP     bool                      // discovery without introspection_endpoint
	block    chan struct{}             // non-nil: introspection waits for it (or the request's end)
	entered  chan struct{}             // non-nil: signalled when an introspection starts
	inflight int
	maxIn    int

	hits, discHits, badAuth atomic.Int64
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	i := &idp{tokens: map[string]map[string]any{}}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	return i
}

func (i *idp) URL() string { return i.srv.URL }

func (i *idp) set(f func(i *idp)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i)
}

// issue registers an active opaque token with the answer's members.
func (i *idp) issue(token string, answer map[string]any) {
	i.set(func(i *idp) { i.tokens[token] = answer })
}

func (i *idp) revoke(token string) { i.set(func(i *idp) { delete(i.tokens, token) }) }

func (i *idp) maxInflight() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.maxIn
}

func (i *idp) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	down, noEP := i.down, i.noEP
	i.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		i.discHits.Add(1)
		doc := map[string]string{"issuer": i.srv.URL, "jwks_uri": i.srv.URL + "/jwks"}
		if !noEP {
			doc["introspection_endpoint"] = i.srv.URL + "/introspect"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	case "/introspect":
		i.introspect(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (i *idp) introspect(w http.ResponseWriter, r *http.Request) {
	i.hits.Add(1)
	i.mu.Lock()
	i.inflight++
	i.maxIn = max(i.maxIn, i.inflight)
	block, entered, status, body := i.block, i.entered, i.status, i.body
	i.mu.Unlock()
	defer i.set(func(i *idp) { i.inflight-- })
	// Reading the body first lets the server notice a client that gives up.
	formErr := r.ParseForm()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	// RFC 7662 §2.1 and RFC 6749 §2.3.1: Basic with form-encoded parts.
	u, p, ok := r.BasicAuth()
	uid, _ := url.QueryUnescape(u)
	pw, _ := url.QueryUnescape(p)
	if r.Method != http.MethodPost || !ok || uid != clientID || pw != secret {
		i.badAuth.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="idp"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	if formErr != nil || r.PostForm.Get("token") == "" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if body != "" {
		_, _ = w.Write([]byte(body))
		return
	}
	i.mu.Lock()
	answer, ok := i.tokens[r.PostForm.Get("token")]
	i.mu.Unlock()
	if !ok {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	out := map[string]any{"active": true}
	for k, v := range answer {
		if v != nil {
			out[k] = v
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// answer is a typical active token's introspection answer at t0.
func answer(iss string) map[string]any {
	return map[string]any{
		"iss": iss, "aud": "nmp-cli", "sub": "alice", "client_id": "nmp-cli", "token_type": "Bearer",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		"email": "alice@example.com", "groups": []string{"eng", "ops"}, "scope": "openid platform:read",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for n := 0; n+1 < len(kv); n += 2 {
		out[kv[n].(string)] = kv[n+1]
	}
	return out
}

// authConfig enables OIDC at the IdP and introspection with the secret
// given as a value.
func authConfig(i *idp) config.AuthConfig {
	c := config.Default().Auth
	c.Enabled = true
	c.OIDC.Enabled = true
	c.OIDC.Issuer = i.URL()
	c.OIDC.ClientID = "nmp-cli"
	c.OIDC.Introspection.Enabled = true
	c.OIDC.Introspection.ClientID = clientID
	s := secret
	c.OIDC.Introspection.ClientSecretValue = &s
	return c
}

type harness struct {
	in    *Introspector
	clock *fakeClock
	logs  *testenv.Buffer
}

func newHarness(t testing.TB, cfg config.AuthConfig, opts ...Option) *harness {
	t.Helper()
	h := &harness{clock: &fakeClock{t: t0}, logs: &testenv.Buffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mapper, err := jwtverify.New(cfg, jwtverify.WithClock(h.clock.Now), jwtverify.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(cfg, mapper, append([]Option{WithClock(h.clock.Now), WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.in = in
	return h
}

func (h *harness) validate(token string) (*authn.Principal, error) {
	return h.in.Validate(context.Background(), token)
}

// outcome is "ok", the InvalidToken reason, or "503:" + the
// IdPUnavailable reason.
func outcome(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return "ok"
	}
	var it *authn.InvalidToken
	if errors.As(err, &it) {
		return it.Reason
	}
	var un *authn.IdPUnavailable
	if errors.As(err, &un) {
		return "503:" + un.Reason
	}
	t.Fatalf("unexpected error type %T: %v", err, err)
	return ""
}

func (h *harness) want(t testing.TB, token, want string) *authn.Principal {
	t.Helper()
	p, err := h.validate(token)
	if got := outcome(t, err); got != want {
		t.Fatalf("outcome %q (err %v), want %q", got, err, want)
	}
	if (p != nil) != (want == "ok") {
		t.Fatalf("principal %+v with outcome %q", p, want)
	}
	return p
}

func writeSecretFile(t testing.TB, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

type configT = config.AuthConfig

func fsMode(m int) os.FileMode { return os.FileMode(m) }

// basic is the Basic credentials header value for the test client.
func basic(pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(pw)))
}
