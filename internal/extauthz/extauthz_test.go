package extauthz_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

func jsonCode(t testing.TB, body []byte) string {
	t.Helper()
	var m struct {
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Code == "" || m.Detail == "" {
		t.Fatalf("error body %q is not {detail, code}: %v", body, err)
	}
	return m.Code
}

// corpusFile is the part of a decision-corpus file
// (internal/authz/testdata/cases, format in its README.md) read here.
type corpusFile struct {
	Bindings []struct {
		Principal, Workspace, Role string
	} `yaml:"bindings"`
	BindingsLoaded *bool          `yaml:"bindings_loaded"`
	ExtraData      map[string]any `yaml:"extra_data"`
	Cases          []struct {
		Note       string         `yaml:"note"`
		Entrypoint string         `yaml:"entrypoint"`
		Input      map[string]any `yaml:"input"`
	} `yaml:"cases"`
}

// corpusRequest is a case's allow input as a request: who and what.
type corpusRequest struct {
	id, email      string
	groups, scopes []string
	method, path   string
}

func str(v any) string { s, _ := v.(string); return s }

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, str(x))
		}
	}
	return out
}

// requestOf reads the direct form or the Envoy form (identity from the
// x-nmp-* headers, which here become the token's claims).
func requestOf(in map[string]any) corpusRequest {
	if attrs, ok := in["attributes"].(map[string]any); ok {
		h, _ := attrs["request"].(map[string]any)["http"].(map[string]any)
		hdr, _ := h["headers"].(map[string]any)
		r := corpusRequest{id: str(hdr["x-nmp-principal-id"]), email: str(hdr["x-nmp-principal-email"]),
			method: str(h["method"]), path: str(h["path"])}
		for g := range strings.SplitSeq(str(hdr["x-nmp-principal-groups"]), ",") {
			if g = strings.TrimSpace(g); g != "" {
				r.groups = append(r.groups, g)
			}
		}
		r.scopes = strings.Fields(str(hdr["x-nmp-scopes"]))
		return r
	}
	return corpusRequest{id: str(in["principal_id"]), email: str(in["principal_email"]), groups: strs(in["principal_groups"]),
		scopes: strs(in["scopes"]), method: str(in["method"]), path: str(in["path"])}
}

func corpusEngine(t *testing.T, f corpusFile) *authz.Engine {
	t.Helper()
	var bs []store.RoleBinding
	for i, b := range f.Bindings {
		bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: b.Principal, Workspace: b.Workspace, Role: b.Role, Revision: 1})
	}
	return authztest.Engine(t, f.ExtraData, bs, f.BindingsLoaded == nil || *f.BindingsLoaded)
}

// TestCorpusMatchesCallout sends every allow case of the decision corpus
// as a CheckRequest, over plaintext and over mutual TLS, with a real
// (unsigned, development) bearer token for the case's principal: the
// answer equals the HTTP callout's (auth.authenticate_authorize) for the
// same token and request — allowed or not, HTTP status, error code,
// challenge and identity headers. Anonymous cases, which the callout
// refuses without asking (missing_token) while ext_authz asks the
// decision point, must equal the decision point's own answer.
func TestCorpusMatchesCallout(t *testing.T) {
	paths, err := filepath.Glob("../authz/testdata/cases/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	serverTLS, clientTLS := mutualTLS(t, true)
	for _, tr := range []struct {
		name string
		tls  *tlsPair
		// under -race, which slows every case about fivefold and finds
		// nothing in this one-request-at-a-time loop, each pass sends a
		// different quarter of the cases with a principal (and every
		// anonymous one); .ci/run runs the test again without -race
		offset int
	}{{name: "plaintext"}, {name: "mutual TLS", tls: &tlsPair{serverTLS, clientTLS}, offset: 2}} {
		t.Run(tr.name, func(t *testing.T) {
			var compared, allowed, anonymous, seen int
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				var f corpusFile
				if err := yaml.Unmarshal(b, &f); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				engine := corpusEngine(t, f)
				s := setup{dp: pdp.NewEmbedded(engine)}
				if tr.tls != nil {
					s.serverTLS, s.clientTLS = tr.tls.server, tr.tls.client
				}
				e := start(t, s)
				for _, c := range f.Cases {
					if c.Entrypoint != "allow" {
						continue
					}
					r := requestOf(c.Input)
					if seen++; raceBuild && r.id != "" && seen%4 != tr.offset {
						continue
					}
					name := filepath.Base(p) + ": " + c.Note
					headers := map[string]string{"user-agent": "corpus"}
					authorization := ""
					if r.id != "" {
						authorization = "Bearer " + unsignedToken(t, r.id, r.email, r.groups, r.scopes)
						headers["authorization"] = authorization
					}
					resp, err := e.client.Check(context.Background(), checkRequest(r.method, r.path, headers))
					if r.id == "" && err != nil {
						anonymous++
						// Anonymous requests are decided too, so they fail
						// when the decision point cannot answer.
						if status.Code(err) != codes.Unavailable || engine.Loaded() {
							t.Errorf("%s: anonymous: Check error %v", name, err)
						}
						continue
					}
					if err != nil {
						// Only an undecidable request may fail; the callout
						// must fail the same way (5xx).
						want := callout(t, e.httpURL, r.method, r.path, authorization)
						if status.Code(err) != codes.Unavailable || want.status < 500 {
							t.Errorf("%s: Check error %v; callout %+v", name, err, want)
						}
						compared++
						continue
					}
					got := grpcAnswer(t, resp)
					if got.status == http.StatusOK {
						allowed++
					}
					if r.id == "" {
						anonymous++
						d := engine.Allow(authz.Input{Method: strings.ToUpper(r.method), Path: r.path})
						switch {
						case got.status == http.StatusOK && (len(got.identity) == 0 || maps.Equal(got.identity, map[string]string{"x-nmp-authorized": "true"})):
						case !d.Allowed && got.status == http.StatusUnauthorized && got.challenge == "Bearer":
						case !engine.Loaded() && got.status == http.StatusServiceUnavailable && got.code == "pdp_unavailable":
							// Bindings not loaded: undecidable, 503 (authz.md "Failure mapping").
						default:
							t.Errorf("%s: anonymous: %+v, decision point %+v", name, got, d)
						}
						continue
					}
					want := callout(t, e.httpURL, r.method, r.path, authorization)
					if got.status != want.status || got.code != want.code || got.challenge != want.challenge || !maps.Equal(got.identity, want.identity) {
						t.Errorf("%s:\n ext_authz %+v\n callout   %+v", name, got, want)
					}
					compared++
				}
			}
			// The comparison is not vacuous: most cases have a principal
			// and a good share is allowed.
			if compared < 150 || allowed < 60 || anonymous == 0 || (!raceBuild && compared < 2000) {
				t.Fatalf("compared %d, allowed %d, anonymous %d: the corpus did not exercise the server", compared, allowed, anonymous)
			}
			t.Logf("%d cases compared with the callout, %d anonymous, %d allowed", compared, anonymous, allowed)
		})
	}
}

type tlsPair struct{ server, client *tls.Config }

// raceBuild is true when the tests run with the race detector
// (racebuild_test.go).
var raceBuild bool

// TestSpoofedIdentityHeaders: identity headers a client sends through
// Envoy never become identity. In development mode they are ignored: the
// answer carries the token's principal, overwrites the identity headers it
// sets and lists every other client-sent x-nmp-* header (and every
// identity header it does not set) in headers_to_remove. In production
// mode the check is refused (401 untrusted_identity_headers).
func TestSpoofedIdentityHeaders(t *testing.T) {
	spoofed := map[string]string{
		"x-nmp-principal-id": "root@example.com", "x-nmp-principal-email": "root@example.com",
		"x-nmp-principal-groups": "admins", "x-nmp-scopes": "platform:admin", "x-nmp-authorized": "true",
		"x-nmp-principal-on-behalf-of": "root@example.com", "x-nmp-principal-on-behalf-of-email": "root@example.com",
		"x-nmp-principal-on-behalf-of-groups": "admins", "x-nmp-something-else": "x",
	}
	engine := authztestEngine(t, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Editor", Revision: 1})
	iss := oidctest.New(t)
	prodCfg := devConfig()
	prodCfg.Auth.AllowUnsignedJWT = false
	prodCfg.Auth.OIDC.Enabled, prodCfg.Auth.OIDC.Issuer, prodCfg.Auth.OIDC.ClientID = true, iss.URL, "nmp-cli"
	tests := []struct {
		name  string
		cfg   func() *setup
		token func() string
		check func(t *testing.T, resp *authv3.CheckResponse, err error)
	}{
		{
			name:  "development mode: ignored and removed",
			cfg:   func() *setup { return &setup{dp: pdp.NewEmbedded(engine)} },
			token: func() string { return unsignedToken(t, "bob", "", nil, nil) },
			check: func(t *testing.T, resp *authv3.CheckResponse, err error) {
				if err != nil || resp.GetOkResponse() == nil {
					t.Fatalf("want OK: %v %v", resp, err)
				}
				got := grpcAnswer(t, resp)
				want := map[string]string{"x-nmp-principal-id": "bob", "x-nmp-authorized": "true"}
				if !maps.Equal(got.identity, want) {
					t.Fatalf("identity %v, want %v", got.identity, want)
				}
				removed := resp.GetOkResponse().GetHeadersToRemove()
				for name := range spoofed {
					_, overwritten := got.identity[name]
					if overwritten == slices.Contains(removed, name) {
						t.Errorf("%s: overwritten %v, in headers_to_remove %v (exactly one must hold)", name, overwritten, removed)
					}
				}
				for _, name := range authn.IdentityHeaders {
					if _, set := got.identity[strings.ToLower(name)]; !set && !slices.Contains(removed, strings.ToLower(name)) {
						t.Errorf("identity header %s neither set nor removed", name)
					}
				}
			},
		},
		{
			name: "production mode: refused",
			cfg:  func() *setup { return &setup{cfg: prodCfg, dp: pdp.NewEmbedded(engine)} },
			token: func() string {
				return iss.Mint(t, oidctest.Claims{Subject: "bob"})
			},
			check: func(t *testing.T, resp *authv3.CheckResponse, err error) {
				if err != nil {
					t.Fatal(err)
				}
				got := grpcAnswer(t, resp)
				if got.status != http.StatusUnauthorized || got.code != authn.CodeUntrustedIdentityHeaders ||
					resp.GetStatus().GetCode() != int32(codes.Unauthenticated) {
					t.Fatalf("got %+v (status %v)", got, resp.GetStatus())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, *tt.cfg())
			headers := maps.Clone(spoofed)
			headers["authorization"] = "Bearer " + tt.token()
			resp, err := e.client.Check(context.Background(), checkRequest("GET", "/apis/entities/v2/workspaces/default/projects", headers))
			tt.check(t, resp, err)
		})
	}
}

func authztestEngine(t testing.TB, bindings ...store.RoleBinding) *authz.Engine {
	t.Helper()
	e, err := authz.NewEngine(mustStaticDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: bindings}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

// failingPDP cannot decide anything.
type failingPDP struct{ err error }

func (f failingPDP) Allow(context.Context, authz.Input) (authz.Decision, error) {
	return authz.Decision{Allowed: true}, f.err // an answer next to an error must not be used
}

func (f failingPDP) HasPermissions(context.Context, authz.PermissionsInput) (bool, error) {
	return true, f.err
}

func (f failingPDP) HasRole(context.Context, authz.RoleInput) (bool, error) { return true, f.err }

func (f failingPDP) VisibleWorkspaces(context.Context, authz.Subject) (pdp.Visible, error) {
	return pdp.Visible{All: true}, f.err
}

// idpDown validates no token: the identity provider is unreachable.
type idpDown struct{}

func (idpDown) Validate(context.Context, string) (*authn.Principal, error) {
	return nil, &authn.IdPUnavailable{Reason: "jwks_unreachable"}
}

// TestUndecidableIsUnavailable: when the decision point or the identity
// provider cannot answer, Check answers UNAVAILABLE with a denied
// response carrying the API's status (503, 504, 502) and JSON error, never
// OK, and counts it. Envoy denies with that status whatever
// failure_mode_allow says.
func TestUndecidableIsUnavailable(t *testing.T) {
	engine := authztestEngine(t, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Editor", Revision: 1})
	unloaded, err := authz.NewEngine(mustStaticDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		s      setup
		status int
		code   string
	}{
		{"decision point unavailable", setup{dp: failingPDP{err: fmt.Errorf("connect: %w", pdp.ErrUnavailable)}}, 503, "pdp_unavailable"},
		{"decision point timed out", setup{dp: failingPDP{err: pdp.ErrTimeout}}, 504, "pdp_timeout"},
		{"decision point bad answer", setup{dp: failingPDP{err: errors.New("unparsable answer")}}, 502, "pdp_error"},
		{"bindings not loaded yet", setup{dp: pdp.NewEmbedded(unloaded)}, 503, "pdp_unavailable"},
		{"identity provider unavailable", setup{dp: pdp.NewEmbedded(engine), tokens: idpDown{}}, 503, "idp_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, tt.s)
			headers := map[string]string{"authorization": "Bearer " + unsignedToken(t, "bob", "", nil, nil)}
			resp, err := e.client.Check(context.Background(), checkRequest("GET", "/apis/entities/v2/workspaces/default/projects", headers))
			if err != nil || resp.GetStatus().GetCode() != int32(codes.Unavailable) || resp.GetOkResponse() != nil {
				t.Fatalf("got %v, %v; want UNAVAILABLE", resp, err)
			}
			if d := resp.GetDeniedResponse(); d == nil || int(d.GetStatus().GetCode()) != tt.status || !strings.Contains(d.GetBody(), `"code":"`+tt.code+`"`) {
				t.Fatalf("denied response %v; want %d %s", d, tt.status, tt.code)
			}
			if n := checks(t, e, "unavailable"); n != 1 {
				t.Fatalf("unavailable checks counted: %v", n)
			}
		})
	}
}

// checks reads nmp_ext_authz_checks_total{result} from the registry.
func checks(t testing.TB, e *env, result string) float64 {
	t.Helper()
	mfs, err := e.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "nmp_ext_authz_checks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestConcurrentChecks: 1,000 Checks at once over mutual TLS, half allowed
// and half denied, each with its own correct answer.
func TestConcurrentChecks(t *testing.T) {
	engine := authztestEngine(t, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Viewer", Revision: 1})
	serverTLS, clientTLS := mutualTLS(t, true)
	e := start(t, setup{dp: pdp.NewEmbedded(engine), serverTLS: serverTLS, clientTLS: clientTLS})
	headers := map[string]string{"authorization": "Bearer " + unsignedToken(t, "bob", "", nil, nil)}
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			method, want := "GET", codes.OK
			if i%2 == 1 {
				method, want = "POST", codes.PermissionDenied // a Viewer cannot create
			}
			resp, err := e.client.Check(context.Background(), checkRequest(method, "/apis/entities/v2/workspaces/default/projects", headers))
			switch {
			case err != nil:
				errs <- fmt.Errorf("check %d: %w", i, err)
			case resp.GetStatus().GetCode() != int32(want):
				errs <- fmt.Errorf("check %d: status %v, want %v", i, resp.GetStatus(), want)
			case want == codes.OK && resp.GetOkResponse() == nil:
				errs <- fmt.Errorf("check %d: no ok_response", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if a, f := checks(t, e, "allowed"), checks(t, e, "forbidden"); a != n/2 || f != n/2 {
		t.Fatalf("counted %v allowed, %v forbidden", a, f)
	}
}

// TestTransport: mutual TLS refuses a client without a certificate (the
// handshake fails, no Check is served) and serves one with a certificate
// from the CA; a plaintext client cannot talk to the TLS server.
func TestTransport(t *testing.T) {
	serverTLS, withCert := mutualTLS(t, true)
	noCert := withCert.Clone()
	noCert.Certificates = nil
	engine := authztestEngine(t, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Viewer", Revision: 1})
	e := start(t, setup{dp: pdp.NewEmbedded(engine), serverTLS: serverTLS, clientTLS: withCert})
	headers := map[string]string{"authorization": "Bearer " + unsignedToken(t, "bob", "", nil, nil)}
	req := checkRequest("GET", "/apis/entities/v2/workspaces/default/projects", headers)
	tests := []struct {
		name   string
		client *tls.Config // nil: plaintext
		ok     bool
	}{
		{"client certificate", withCert, true},
		{"no client certificate", noCert, false},
		{"plaintext", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dial(t, e.srv.Addr().String(), tt.client)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, req)
			if tt.ok != (err == nil) {
				t.Fatalf("Check: %v, %v", resp, err)
			}
			if !tt.ok && status.Code(err) != codes.Unavailable {
				t.Fatalf("refused with %v, want a transport failure (Unavailable)", err)
			}
		})
	}
	if n := checks(t, e, "allowed"); n != 1 {
		t.Fatalf("%v checks served, want only the one with a client certificate", n)
	}
}

// TestHealthAndStop: grpc.health.v1 answers SERVING for the server and
// the Authorization service; stopping returns nil once in-flight calls
// are done, after which nothing is served.
func TestHealthAndStop(t *testing.T) {
	e := start(t, setup{dp: pdp.NewEmbedded(authztestEngine(t))})
	hc := healthpb.NewHealthClient(e.conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, resp, err)
		}
	}
	if err := e.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("health answered after stop")
	}
}

// TestMalformedCheckRequest: a CheckRequest without the HTTP attributes
// cannot be decided (InvalidArgument); one without the method or the
// path is denied 400 missing_original_path, as the callout answers.
func TestMalformedCheckRequest(t *testing.T) {
	e := start(t, setup{dp: pdp.NewEmbedded(authztestEngine(t))})
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		rpc  codes.Code // error status; OK: a denied response
	}{
		{"empty", &authv3.CheckRequest{}, codes.InvalidArgument},
		{"no path", checkRequest("GET", "", nil), codes.OK},
		{"no method", checkRequest("", "/apis/entities/v2/workspaces", nil), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), tt.req)
			if status.Code(err) != tt.rpc {
				t.Fatalf("got %v, %v", resp, err)
			}
			if tt.rpc == codes.OK {
				if got := grpcAnswer(t, resp); got.status != http.StatusBadRequest || got.code != "missing_original_path" {
					t.Fatalf("got %+v", got)
				}
			}
		})
	}
}

// TestDeniedAnswers: the deny shapes: 401 with the invalid_token
// challenge for a bad token, 401 Bearer for an anonymous request the
// policy refuses, 403 for a principal without the permission; bypass
// paths are OK without identity and without a token.
func TestDeniedAnswers(t *testing.T) {
	engine := authztestEngine(t, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Viewer", Revision: 1})
	e := start(t, setup{dp: pdp.NewEmbedded(engine)})
	bob := "Bearer " + unsignedToken(t, "bob", "", nil, nil)
	tests := []struct {
		name          string
		method, path  string
		authorization string
		status        int
		code          string
		challenge     string
		rpc           codes.Code
	}{
		{"bad token", "GET", "/v2/workspaces", "Bearer not-a-jwt", 401, "invalid_token", "Bearer error=\"invalid_token\"", codes.Unauthenticated},
		{"anonymous", "GET", "/v2/workspaces", "", 401, "unauthorized", "Bearer", codes.Unauthenticated},
		{"no permission", "POST", "/apis/entities/v2/workspaces/default/projects", bob, 403, "forbidden", "", codes.PermissionDenied},
		{"bypass path without token", "GET", "/health/ready", "", 200, "", "", codes.OK},
		{"allowed", "GET", "/apis/entities/v2/workspaces/default/projects", bob, 200, "", "", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{}
			if tt.authorization != "" {
				headers["authorization"] = tt.authorization
			}
			resp, err := e.client.Check(context.Background(), checkRequest(tt.method, tt.path, headers))
			if err != nil {
				t.Fatal(err)
			}
			got := grpcAnswer(t, resp)
			if got.status != tt.status || got.code != tt.code || !strings.HasPrefix(got.challenge, tt.challenge) ||
				(tt.challenge == "" && got.challenge != "") || resp.GetStatus().GetCode() != int32(tt.rpc) {
				t.Fatalf("got %+v, rpc %v", got, resp.GetStatus())
			}
			if tt.name == "bypass path without token" && len(got.identity) != 0 {
				t.Fatalf("bypass path with identity %v", got.identity)
			}
		})
	}
}
