package gateway_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Placeholder addresses of the documented Caddyfile; the test replaces
// exactly these.
const (
	docSite    = "gateway.example.com {"
	docAdmin   = "admin localhost:2019"
	docNMP     = "nmp.internal:8080"
	docReports = "reports.internal:8080"
)

var caddyBlock = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")

// documentedCaddyfile returns the Caddyfile of docs/gateway.md with its
// addresses replaced: the site listens on listen (plain HTTP, bound to
// loopback), the admin endpoint on admin, nmp and the reports service at
// the given host:port. Anything else in the file is used as written.
func documentedCaddyfile(t *testing.T, listen, admin, nmp, reports string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "gateway.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := caddyBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) != 1 {
		t.Fatalf("docs/gateway.md has %d caddyfile blocks, want 1", len(blocks))
	}
	conf := blocks[0][1]
	for _, r := range []struct{ old, new string }{
		{docSite, "http://" + listen + " {\n\tbind 127.0.0.1"},
		{docAdmin, "admin " + admin},
		{docNMP, nmp},
		{docReports, reports},
	} {
		if !strings.Contains(conf, r.old) {
			t.Fatalf("the documented Caddyfile no longer contains %q", r.old)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	return conf
}

// startCaddy runs caddy with the documented Caddyfile in front of nmp and
// reports, or skips when caddy is not installed (CI installs it).
func startCaddy(t *testing.T, nmp, reports string) string {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		testenv.Missing(t, "caddy", "not on PATH")
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := documentedCaddyfile(t, listen, freeAddr(t), strings.TrimPrefix(nmp, "http://"), strings.TrimPrefix(reports, "http://"))
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	// Caddy keeps its storage and autosaved configuration under HOME/XDG.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		werr := <-exited // "signal: killed" unless caddy had already stopped
		if t.Failed() {
			t.Logf("caddy (%v) output:\n%s", werr, out)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			testenv.Close(t, c)
			return "http://" + listen
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("caddy exited: %v\n%s\n%s", werr, out, conf)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recorder is the stand-in for another platform service behind the
// gateway: it answers 200 and records each request's method, path and
// headers.
type recorder struct {
	mu   sync.Mutex
	seen []*http.Request
}

func startRecorder(t *testing.T) (*recorder, string) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Clone(r.Context()))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"service":"reports"}`))
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

// reportsData is operator extra authz data for the stand-in service:
// Viewers may list, Editors may create (the default workspace makes every
// user Editor, system only Viewer).
const reportsData = `permissions:
  reports: {reports: {list: {description: List}, create: {description: Create}}}
roles:
  Viewer: {permissions: [reports.reports.list]}
  Editor: {permissions: [reports.reports.create]}
endpoints:
  /apis/reports/v2/workspaces/{workspace}/reports:
    get: {permissions: [reports.reports.list], scopes: ["reports:read", "platform:read"]}
    post: {permissions: [reports.reports.create], scopes: ["reports:write", "platform:write"]}
`

// spoofed is a client's attempt at every identity header.
var spoofed = []string{
	authn.HeaderPrincipalID, "root@example.com",
	authn.HeaderPrincipalEmail, "root@example.com",
	authn.HeaderPrincipalGroups, "admins",
	authn.HeaderOnBehalfOf, "service:evil",
	authn.HeaderOnBehalfOfEmail, "evil@example.com",
	authn.HeaderOnBehalfOfGroups, "evil",
	authn.HeaderScopes, "platform:write",
	authn.HeaderAuthorized, "true",
}

// TestCaddyForwardAuth puts a real Caddy with the Caddyfile of
// docs/gateway.md in front of nmp and of a stand-in service, in both
// callout modes: unauthenticated requests end at the gateway with 401,
// denied ones with 403 (at the gateway when the callout authorizes, at
// nmp otherwise), and the stand-in receives exactly the identity headers
// the callout produced, never a client's.
func TestCaddyForwardAuth(t *testing.T) {
	iss := oidctest.New(t)
	extra := filepath.Join(t.TempDir(), "reports.yaml")
	if err := os.WriteFile(extra, []byte(reportsData), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, authorize := range []bool{false, true} {
		t.Run("authenticate_authorize="+strconv.FormatBool(authorize), func(t *testing.T) {
			srv := servertest.Start(t, behindGateway(iss.URL, authorize, extra))
			rec, reportsURL := startRecorder(t)
			gw := startCaddy(t, srv.URL, reportsURL)
			alice := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com",
				Groups: []string{"eng", "ops"}, Scope: "openid platform:read platform:write"})
			bob := iss.Mint(t, oidctest.Claims{Subject: "u-bob", Email: "bob@example.com"})
			// A token without email or groups: the callout returns neither
			// header, and the gateway must not forward a placeholder instead.
			carol := iss.Mint(t, oidctest.Claims{Subject: "u-carol"})
			bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
			lower := func(kv []string) []string { // header names as a client may send them
				out := make([]string, len(kv))
				for i := range kv {
					out[i] = kv[i]
					if i%2 == 0 {
						out[i] = strings.ToLower(kv[i])
					}
				}
				return out
			}
			reports := "/apis/reports/v2/workspaces/default/reports"
			// forbidden is 403 at the gateway when the callout authorizes;
			// otherwise the stand-in gets the request without
			// X-NMP-Authorized and must ask the PDP itself.
			forbidden, forbiddenReaches := 200, true
			if authorize {
				forbidden, forbiddenReaches = 403, false
			}

			tests := []struct {
				name    string
				method  string
				path    string
				header  []string
				status  int
				reaches bool   // the stand-in service is called
				email   string // X-NMP-Principal-Email at the stand-in ("": absent)
				groups  string // X-NMP-Principal-Groups at the stand-in ("": absent)
			}{
				{"bypass path", "GET", "/health/live", nil, 200, false, "", ""},
				{"no token", "GET", reports, nil, 401, false, "", ""},
				{"invalid token", "GET", reports, bearer("x.y.z"), 401, false, "", ""},
				{"spoofed identity without token", "GET", reports, spoofed, 401, false, "", ""},
				{"spoofed identity in lower case without token", "GET", reports, lower(spoofed), 401, false, "", ""},
				{"valid token", "GET", reports, bearer(alice), 200, true, "alice@example.com", "eng,ops"},
				{"valid token without email or groups", "GET", reports, bearer(carol), 200, true, "", ""},
				{"every client identity header replaced", "GET", reports, append(bearer(bob), spoofed...), 200, true, "bob@example.com", ""},
				{"lower-case client identity headers replaced", "GET", reports, append(bearer(bob), lower(spoofed)...), 200, true, "bob@example.com", ""},
				{"write allowed by the policy", "POST", reports, bearer(alice), 200, true, "alice@example.com", "eng,ops"},
				{"write denied by the policy", "POST", "/apis/reports/v2/workspaces/system/reports", bearer(bob),
					forbidden, forbiddenReaches, "bob@example.com", ""},
				{"write denied by the policy with spoofed headers", "POST", "/apis/reports/v2/workspaces/system/reports",
					append(bearer(bob), spoofed...), forbidden, forbiddenReaches, "bob@example.com", ""},
				{"nmp: valid token", "GET", "/v2/workspaces/default", bearer(alice), 200, false, "", ""},
				{"nmp: token without email or groups", "GET", "/v2/workspaces/default", bearer(carol), 200, false, "", ""},
				{"nmp: spoofed admin headers with bob's token", "GET", "/v2/workspaces/system/members",
					append(bearer(bob), spoofed...), 200, false, "", ""},
				// Denied at nmp itself when the callout only authenticates.
				{"nmp: write denied", "DELETE", "/v2/workspaces/default", append(bearer(bob), authn.HeaderAuthorized, "true"), 403, false, "", ""},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					before := rec.count()
					status, body := do(t, tc.method, gw+tc.path, tc.header...)
					if status != tc.status {
						t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
					}
					calls := rec.count() - before
					if !tc.reaches {
						if calls != 0 {
							t.Fatalf("the stand-in service was called %d times", calls)
						}
						return
					}
					if calls != 1 {
						t.Fatalf("the stand-in service was called %d times, want 1", calls)
					}
					got := rec.last()
					if v := got.Header.Get(authn.HeaderPrincipalEmail); v != tc.email {
						t.Errorf("email at the service: %q, want %q", v, tc.email)
					}
					if v := got.Header.Get(authn.HeaderPrincipalGroups); v != tc.groups {
						t.Errorf("groups at the service: %q, want %q", v, tc.groups)
					}
					want := callout(t, srv.URL, tc.method, tc.path, tc.header)
					if want.Get(authn.HeaderPrincipalID) == "" {
						t.Fatalf("the callout returned no principal: %v", want)
					}
					if a := want.Get(authn.HeaderAuthorized); (a == "true") != authorize {
						t.Fatalf("callout X-NMP-Authorized = %q with authenticate_authorize=%v", a, authorize)
					}
					for _, name := range authn.IdentityHeaders {
						vs := got.Header.Values(name)
						w := want.Get(name)
						if len(vs) > 1 || (len(vs) == 1 && vs[0] != w) || (len(vs) == 0 && w != "") {
							t.Errorf("%s at the service: %q, the callout's: %q", name, vs, w)
						}
					}
					for name := range got.Header {
						if strings.HasPrefix(strings.ToLower(name), "x-nmp-") && !isIdentityHeader(name) {
							t.Errorf("unexpected header at the service: %s", name)
						}
					}
				})
			}
			// nmp saw only identities the callout produced.
			if strings.Contains(srv.Logs(), "principal=root@example.com") {
				t.Fatal("a client-sent identity reached nmp")
			}
		})
	}
}

// TestCaddyCalloutUnreachable: when Caddy cannot reach the callout the
// request fails at the gateway (502) and reaches no service.
func TestCaddyCalloutUnreachable(t *testing.T) {
	rec, reportsURL := startRecorder(t)
	gw := startCaddy(t, "http://"+freeAddr(t), reportsURL)
	status, body := do(t, "GET", gw+"/apis/reports/v2/workspaces/default/reports", "Authorization", "Bearer x.y.z")
	if status != http.StatusBadGateway {
		t.Fatalf("%d %s, want 502", status, body)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("the stand-in service was called %d times", n)
	}
}

func isIdentityHeader(name string) bool {
	for _, h := range authn.IdentityHeaders {
		if http.CanonicalHeaderKey(h) == http.CanonicalHeaderKey(name) {
			return true
		}
	}
	return false
}

// do sends one request; header is name, value pairs, kept in the case
// given (a client may send any case).
func do(t *testing.T, method, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[header[i]] = append(req.Header[header[i]], header[i+1])
	}
	resp, err := servertest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b.String()
}

// callout asks nmp's callout directly, with only the request's
// Authorization header, for the identity headers it answers for the
// original request.
func callout(t *testing.T, nmp, method, path string, header []string) http.Header {
	t.Helper()
	req, err := http.NewRequest("GET", nmp+"/apis/auth/authenticate", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Uri", path)
	for i := 0; i+1 < len(header); i += 2 {
		if http.CanonicalHeaderKey(header[i]) == "Authorization" {
			req.Header.Set("Authorization", header[i+1])
		}
	}
	resp, err := servertest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("callout: %d %v", resp.StatusCode, err)
	}
	return resp.Header
}
