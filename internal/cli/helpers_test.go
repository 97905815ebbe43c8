package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorded is one request as the fake API server saw it.
type recorded struct {
	Method     string
	RequestURI string // escaped path and raw query
	Body       string
	Header     http.Header
}

// reply is a canned response.
type reply struct {
	status int
	body   string
}

// fakeAPI is an httptest server speaking the entity-store API shapes. It
// records every request; replies maps "METHOD /path?query" or
// "METHOD /path" (unescaped path, raw query) to a response and defaults to
// a plausible success.
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	replies map[string]reply
}

const (
	workspaceJSON = `{"id":"0b7c","name":"ml-team","description":"ML","created_at":"2026-01-02T05:04:05.123456+02:00","created_by":"alice@example.com","updated_at":"2026-01-02T03:04:05.123456Z","updated_by":"alice@example.com"}`
	defaultWSJSON = `{"id":"1a2b","name":"default","description":null,"created_at":"2025-12-31T23:00:00Z","created_by":null,"updated_at":"2025-12-31T23:00:00Z","updated_by":null}`
	memberJSON    = `{"principal":"*","roles":["Editor","Viewer"],"granted_at":"2026-01-02T03:04:05.5Z","granted_by":"alice@example.com"}`
	bobJSON       = `{"principal":"bob@example.com","roles":["Viewer"],"granted_at":"2026-01-03T00:00:00Z","granted_by":null}`
	deleteJSON    = `{"message":"Member removed","id":"*","deleted_at":"2026-01-02T03:04:05.123456Z"}`
)

func pageJSON(page, totalPages, total int, items ...string) string {
	return fmt.Sprintf(`{"data":[%s],"pagination":{"page":%d,"page_size":100,"current_page_size":%d,"total_pages":%d,"total_results":%d},"sort":"-created_at","filter":null}`,
		strings.Join(items, ","), page, len(items), totalPages, total)
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{replies: map[string]reply{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{r.Method, r.RequestURI, string(body), r.Header.Clone()})
	rep, ok := f.replies[r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery]
	if !ok {
		rep, ok = f.replies[r.Method+" "+r.URL.Path]
	}
	f.mu.Unlock()
	if !ok {
		rep = defaultReply(r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func defaultReply(r *http.Request) reply {
	const ws = "/apis/entities/v2/workspaces"
	p := r.URL.Path
	isMembers := strings.Contains(p, "/members")
	switch {
	case r.Method == "GET" && p == ws:
		return reply{200, pageJSON(1, 1, 2, workspaceJSON, defaultWSJSON)}
	case r.Method == "GET" && isMembers:
		return reply{200, `{"data":[` + memberJSON + `,` + bobJSON + `]}`}
	case r.Method == "DELETE":
		return reply{200, deleteJSON}
	case r.Method == "POST" && isMembers, r.Method == "PUT" && isMembers:
		return reply{201, memberJSON}
	case strings.HasPrefix(p, ws):
		return reply{200, workspaceJSON}
	case r.Method == "POST" && p == "/apis/auth/v2/self-check":
		// The check after a login or refresh: the token is accepted.
		return reply{200, `{"allowed":true,"reason":"test"}`}
	}
	return reply{404, `{"detail":"Not Found","code":"not_found"}`}
}

func (f *fakeAPI) set(methodPath string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[methodPath] = reply{status, body}
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// result is the outcome of one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs nmp with env (HOME defaults to a fresh temporary directory)
// and stdin.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runCLIContext(context.Background(), t, env, stdin, args...)
}

func runCLIContext(ctx context.Context, t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	environ := []string{"HOME=" + t.TempDir()}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var stdout, stderr strings.Builder
	code := Run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, environ)
	return result{code, stdout.String(), stderr.String()}
}

// writeConfig writes a client config file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configWithContext is a config whose current context "dev" points at
// baseURL with the given token and workspace.
func configWithContext(baseURL, token, workspace string) string {
	return fmt.Sprintf(`current_context: dev
clusters:
  - {name: dev-cluster, base_url: %q}
users:
  - {name: dev-user, type: oauth, token: %q}
contexts:
  - {name: dev, cluster: dev-cluster, user: dev-user, workspace: %q}
`, baseURL, token, workspace)
}
