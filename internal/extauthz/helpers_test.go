package extauthz_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/jwtverify"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/extauthz"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

var quiet = slog.New(slog.DiscardHandler)

// devConfig is auth on in development mode with unsigned tokens accepted
// and the callout authorizing (the ext_authz server always does).
func devConfig() *config.Config {
	c := config.Default()
	c.Auth.Enabled = true
	c.Auth.AllowUnsignedJWT = true
	c.Auth.AuthenticateAuthorize = true
	return c
}

// setup is what a test varies.
type setup struct {
	cfg *config.Config
	dp  pdp.DecisionPoint
	// tokens replaces the validator built from cfg (nil: jwtverify).
	tokens authn.TokenValidator
	// serverTLS / clientTLS: nil for plaintext.
	serverTLS, clientTLS *tls.Config
	log                  *slog.Logger
}

// env is a running ext_authz server, the HTTP API (for its callout) over
// the same decision point and validator, and a gRPC client.
type env struct {
	srv     *extauthz.Server
	client  authv3.AuthorizationClient
	conn    *grpc.ClientConn
	httpURL string
	metrics *metrics.Metrics
	stop    func() error // stops Run and returns its result
}

func start(t testing.TB, s setup) *env {
	t.Helper()
	if s.cfg == nil {
		s.cfg = devConfig()
	}
	if s.log == nil {
		s.log = quiet
	}
	tokens := s.tokens
	if tokens == nil {
		v, err := jwtverify.New(s.cfg.Auth, jwtverify.WithLogger(s.log))
		if err != nil {
			t.Fatal(err)
		}
		tokens = &authn.TokenRouter{JWT: v, Log: s.log, Now: time.Now}
	}
	m := metrics.New()
	opts := api.Options{Config: s.cfg, Roles: authz.NewCatalog(mustStaticDoc(t)), Health: health.New("policy"),
		Metrics: m, Logger: s.log, PDP: s.dp, Tokens: tokens}
	hs := httptest.NewServer(api.New(opts))
	t.Cleanup(hs.Close)
	srv, err := extauthz.New(extauthz.Options{Address: "127.0.0.1:0", Gateway: api.NewGateway(opts), TLS: s.serverTLS,
		Registerer: m.Registry(), Log: s.log, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var stopped bool
	var stopErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	creds := insecure.NewCredentials()
	if s.clientTLS != nil {
		creds = credentials.NewTLS(s.clientTLS)
	}
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &env{srv: srv, client: authv3.NewAuthorizationClient(conn), conn: conn, httpURL: hs.URL, metrics: m, stop: stop}
}

func mustStaticDoc(t testing.TB) *authz.Document {
	t.Helper()
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkRequest is Envoy's CheckRequest for a request with these
// (lower-case) headers.
func checkRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "req-1", Method: method, Path: path, Host: "nmp.example.com", Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}}
}

// unsignedToken is a development token for the principal.
func unsignedToken(t testing.TB, id, email string, groups, scopes []string) string {
	t.Helper()
	claims := map[string]any{"sub": id, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	if email != "" {
		claims["email"] = email
	}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	if len(scopes) > 0 {
		s := ""
		for i, sc := range scopes {
			if i > 0 {
				s += " "
			}
			s += sc
		}
		claims["scope"] = s
	}
	tok, err := clientconfig.UnsignedJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// answer is what a gateway makes of a check: the HTTP status it sends
// the client (200 for allowed), the error code, the identity headers it
// forwards (lower-case names) and the challenge.
type answer struct {
	status    int
	code      string
	identity  map[string]string
	challenge string
}

// callout asks the HTTP callout the way nginx does.
func callout(t testing.TB, base, method, path, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/apis/auth/authenticate", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Uri", path)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, identity: map[string]string{}, challenge: resp.Header.Get("WWW-Authenticate")}
	if resp.StatusCode != http.StatusOK {
		a.code = jsonCode(t, body)
		return a
	}
	for _, name := range authn.IdentityHeaders {
		if v := resp.Header.Get(name); v != "" {
			a.identity[strings.ToLower(name)] = v
		}
	}
	return a
}

// grpcAnswer is the gateway's view of a CheckResponse.
func grpcAnswer(t testing.TB, resp *authv3.CheckResponse) answer {
	t.Helper()
	a := answer{identity: map[string]string{}}
	if ok := resp.GetOkResponse(); ok != nil {
		if resp.GetStatus().GetCode() != 0 {
			t.Fatalf("ok_response with status %v", resp.GetStatus())
		}
		a.status = http.StatusOK
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Fatalf("header %s appended, not overwritten", h.GetHeader().GetKey())
			}
			a.identity[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		return a
	}
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetStatus().GetCode() == 0 {
		t.Fatalf("neither ok nor denied: %v", resp)
	}
	a.status = int(d.GetStatus().GetCode())
	a.code = jsonCode(t, []byte(d.GetBody()))
	for _, h := range d.GetHeaders() {
		switch h.GetHeader().GetKey() {
		case "www-authenticate":
			a.challenge = h.GetHeader().GetValue()
		case "content-type":
			if h.GetHeader().GetValue() != "application/json" {
				t.Fatalf("content-type %q", h.GetHeader().GetValue())
			}
		}
	}
	return a
}

// mutualTLS returns the server's config (client certificate required) and
// a client's, with or without a client certificate.
func mutualTLS(t testing.TB, withClientCert bool) (server, client *tls.Config) {
	t.Helper()
	ca := tlstest.NewCA(t, "nmp test CA")
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ca.Server(t, "nmp").TLS(t)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	client = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if withClientCert {
		client.Certificates = []tls.Certificate{ca.Client(t, "envoy").TLS(t)}
	}
	return server, client
}

func dial(t testing.TB, addr string, tlsCfg *tls.Config) authv3.AuthorizationClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}
