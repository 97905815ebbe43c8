package client

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/version"
)

// recorded is one request as the server saw it.
type recorded struct {
	Method, RequestURI, Body string
	Header                   http.Header
}

// fakeServer answers every request with status and body and records it.
func fakeServer(t *testing.T, status int, body string) (*httptest.Server, *[]recorded) {
	t.Helper()
	var (
		mu   sync.Mutex
		reqs []recorded
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, recorded{r.Method, r.RequestURI, string(b), r.Header.Clone()})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEscapePath(t *testing.T) {
	tests := []struct {
		name     string
		segments []string
		want     string
	}{
		{"wildcard", []string{"*"}, "/%2A"},
		{"email", []string{"bob@example.com"}, "/bob@example.com"},
		{"slash stays in segment", []string{"a/b"}, "/a%2Fb"},
		{"space and percent", []string{"a b%"}, "/a%20b%25"},
		{"service principal", []string{"service:jobs"}, "/service:jobs"},
		{"several", []string{"ml-team", "members", "*"}, "/ml-team/members/%2A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := escapePath(tt.segments...); got != tt.want {
				t.Errorf("escapePath(%q) = %q, want %q", tt.segments, got, tt.want)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func(c *Client) error
		wantMethod string
		wantURI    string
		wantBody   string
	}{
		{
			name:       "list workspaces without options",
			call:       func(c *Client) error { _, err := c.ListWorkspaces(ctx, ListOptions{}); return err },
			wantMethod: "GET", wantURI: "/apis/entities/v2/workspaces",
		},
		{
			name: "list workspaces with options",
			call: func(c *Client) error {
				_, err := c.ListWorkspaces(ctx, ListOptions{Page: 2, PageSize: 10, Sort: "-name", Filters: []Filter{
					{Field: "name", Value: "x"}, {Field: "description", Operator: "$like", Value: "a=b,c"},
				}})
				return err
			},
			wantMethod: "GET",
			wantURI:    "/apis/entities/v2/workspaces?filter%5Bdescription%5D%5B%24like%5D=a%3Db%2Cc&filter%5Bname%5D=x&page=2&page_size=10&sort=-name",
		},
		{
			name: "create workspace",
			call: func(c *Client) error {
				_, err := c.CreateWorkspace(ctx, CreateWorkspaceRequest{Name: "ml-team"}, WriteOptions{})
				return err
			},
			wantMethod: "POST", wantURI: "/apis/entities/v2/workspaces", wantBody: `{"name":"ml-team"}`,
		},
		{
			name: "create workspace no wait with description",
			call: func(c *Client) error {
				d := ""
				_, err := c.CreateWorkspace(ctx, CreateWorkspaceRequest{Name: "ml-team", Description: &d}, WriteOptions{NoWait: true})
				return err
			},
			wantMethod: "POST", wantURI: "/apis/entities/v2/workspaces?wait_role_propagation=false",
			wantBody: `{"name":"ml-team","description":""}`,
		},
		{
			name:       "get workspace",
			call:       func(c *Client) error { _, err := c.GetWorkspace(ctx, "ml-team"); return err },
			wantMethod: "GET", wantURI: "/apis/entities/v2/workspaces/ml-team",
		},
		{
			name:       "update workspace",
			call:       func(c *Client) error { _, err := c.UpdateWorkspace(ctx, "ml-team", "new"); return err },
			wantMethod: "PUT", wantURI: "/apis/entities/v2/workspaces/ml-team", wantBody: `{"description":"new"}`,
		},
		{
			name:       "delete workspace",
			call:       func(c *Client) error { _, err := c.DeleteWorkspace(ctx, "ml-team"); return err },
			wantMethod: "DELETE", wantURI: "/apis/entities/v2/workspaces/ml-team",
		},
		{
			name:       "list members",
			call:       func(c *Client) error { _, err := c.ListMembers(ctx, "ml-team"); return err },
			wantMethod: "GET", wantURI: "/apis/entities/v2/workspaces/ml-team/members",
		},
		{
			name: "create member",
			call: func(c *Client) error {
				_, err := c.CreateMember(ctx, "ml-team", "*", []string{"Viewer", "Editor"}, WriteOptions{})
				return err
			},
			wantMethod: "POST", wantURI: "/apis/entities/v2/workspaces/ml-team/members",
			wantBody: `{"principal":"*","roles":["Viewer","Editor"]}`,
		},
		{
			name: "update member",
			call: func(c *Client) error {
				_, err := c.UpdateMember(ctx, "ml-team", "bob@example.com", []string{"Admin"}, WriteOptions{NoWait: true})
				return err
			},
			wantMethod: "PUT", wantURI: "/apis/entities/v2/workspaces/ml-team/members/bob@example.com?wait_role_propagation=false",
			wantBody: `{"roles":["Admin"]}`,
		},
		{
			name:       "delete wildcard member",
			call:       func(c *Client) error { _, err := c.DeleteMember(ctx, "ml-team", "*", WriteOptions{}); return err },
			wantMethod: "DELETE", wantURI: "/apis/entities/v2/workspaces/ml-team/members/%2A",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, 200, `{"data":[]}`)
			if err := tt.call(newClient(t, Options{BaseURL: srv.URL})); err != nil {
				t.Fatal(err)
			}
			if len(*reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(*reqs))
			}
			r := (*reqs)[0]
			if r.Method != tt.wantMethod || r.RequestURI != tt.wantURI || r.Body != tt.wantBody {
				t.Errorf("got %s %s %s\nwant %s %s %s", r.Method, r.RequestURI, r.Body, tt.wantMethod, tt.wantURI, tt.wantBody)
			}
			if tt.wantBody != "" && r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
		})
	}
}

func TestBaseURLPathPrefix(t *testing.T) {
	srv, reqs := fakeServer(t, 200, `{}`)
	if _, err := newClient(t, Options{BaseURL: srv.URL + "/nmp/"}).GetWorkspace(context.Background(), "w"); err != nil {
		t.Fatal(err)
	}
	if got := (*reqs)[0].RequestURI; got != "/nmp/apis/entities/v2/workspaces/w" {
		t.Errorf("RequestURI = %q", got)
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		wantAuth string
	}{
		{"with token", "secret-token", "Bearer secret-token"},
		{"without token", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, 200, `{}`)
			if _, err := newClient(t, Options{BaseURL: srv.URL, Token: tt.token}).GetWorkspace(context.Background(), "w"); err != nil {
				t.Fatal(err)
			}
			h := (*reqs)[0].Header
			if got := h.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if _, present := h["Authorization"]; present != (tt.wantAuth != "") {
				t.Errorf("Authorization header present = %v, want %v", present, !present)
			}
			if got := h.Get("User-Agent"); got != "nmp/"+version.Version {
				t.Errorf("User-Agent = %q", got)
			}
			for k := range h {
				if strings.HasPrefix(strings.ToLower(k), "x-nmp-") {
					t.Errorf("identity header %s sent", k)
				}
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{"detail and code", 409, `{"detail":"Workspace 'ml-team' already exists","code":"already_exists"}`,
			APIError{409, "Workspace 'ml-team' already exists", "already_exists"}},
		{"detail only", 404, `{"detail":"not here"}`, APIError{404, "not here", ""}},
		{"non-JSON body", 502, `<html>bad gateway</html>`, APIError{502, "Bad Gateway", ""}},
		{"empty body", 401, ``, APIError{401, "Unauthorized", ""}},
		{"detail not a string", 422, `{"detail":[{"msg":"bad"}],"code":"validation_error"}`,
			APIError{422, `[{"msg":"bad"}]`, "validation_error"}},
		{"null detail", 403, `{"detail":null}`, APIError{403, "Forbidden", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeServer(t, tt.status, tt.body)
			_, err := newClient(t, Options{BaseURL: srv.URL}).GetWorkspace(context.Background(), "w")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %T %v, want *APIError", err, err)
			}
			if *apiErr != tt.want {
				t.Errorf("got %+v, want %+v", *apiErr, tt.want)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(t, Options{BaseURL: url, Token: "secret-token"}).ListWorkspaces(context.Background(), ListOptions{})
	var netErr *NetworkError
	if !errors.As(err, &netErr) {
		t.Fatalf("err = %T %v, want *NetworkError", err, err)
	}
	if strings.Contains(err.Error(), "secret-token") || !strings.Contains(err.Error(), "cannot reach "+url) {
		t.Errorf("message = %q", err.Error())
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	_, err := newClient(t, Options{BaseURL: srv.URL, Timeout: 50 * time.Millisecond}).ListMembers(context.Background(), "w")
	var netErr *NetworkError
	if !errors.As(err, &netErr) {
		t.Fatalf("err = %T %v, want *NetworkError", err, err)
	}
}

func TestNoRetry(t *testing.T) {
	srv, reqs := fakeServer(t, 503, `{"detail":"Authorization service unavailable","code":"pdp_unavailable"}`)
	_, err := newClient(t, Options{BaseURL: srv.URL}).ListMembers(context.Background(), "w")
	if err == nil || len(*reqs) != 1 {
		t.Errorf("err = %v, requests = %d; want an error after exactly 1 request", err, len(*reqs))
	}
}

func TestResponseError(t *testing.T) {
	srv, _ := fakeServer(t, 200, `not json`)
	_, err := newClient(t, Options{BaseURL: srv.URL}).GetWorkspace(context.Background(), "w")
	var respErr *ResponseError
	if !errors.As(err, &respErr) || respErr.Status != 200 {
		t.Fatalf("err = %T %v, want *ResponseError", err, err)
	}
}

func TestDecodePage(t *testing.T) {
	srv, _ := fakeServer(t, 200, `{"data":[{"id":"1","name":"default","description":null,"created_at":"2026-01-02T03:04:05.123456Z","created_by":null,"updated_at":"2026-01-02T03:04:05.123456Z","updated_by":"a@b.c"}],
		"pagination":{"page":1,"page_size":100,"current_page_size":1,"total_pages":1,"total_results":1},"sort":"-created_at","filter":{"name":{"$like":"def"}}}`)
	page, err := newClient(t, Options{BaseURL: srv.URL}).ListWorkspaces(context.Background(), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := Pagination{Page: 1, PageSize: 100, CurrentPageSize: 1, TotalPages: 1, TotalResults: 1}
	if page.Pagination != want || page.Sort != "-created_at" || len(page.Data) != 1 {
		t.Fatalf("page = %+v", page)
	}
	ws := page.Data[0]
	if ws.Name != "default" || ws.Description != nil || ws.CreatedBy != nil || *ws.UpdatedBy != "a@b.c" || ws.CreatedAt != "2026-01-02T03:04:05.123456Z" {
		t.Errorf("workspace = %+v", ws)
	}
	if page.Filter == nil {
		t.Error("filter not decoded")
	}
}

func TestVerbose(t *testing.T) {
	srv, _ := fakeServer(t, 404, `{"detail":"nope"}`)
	var log bytes.Buffer
	c := newClient(t, Options{BaseURL: srv.URL, Token: "secret-token", Verbose: &log})
	_ = c.Do(context.Background(), "GET", "/x", map[string][]string{
		"page": {"2"}, "filter[name]": {"a"}, "access_token": {"leak"},
	}, map[string]string{"body": "hidden-body"}, nil)
	got := log.String()
	for _, want := range []string{"GET " + srv.URL + "/x?", "page=2", "filter%5Bname%5D=a", "access_token=REDACTED", "-> 404 ("} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	for _, secret := range []string{"secret-token", "leak", "hidden-body", "nope", "Bearer", "User-Agent"} {
		if strings.Contains(got, secret) {
			t.Errorf("log %q contains %q", got, secret)
		}
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := New(Options{BaseURL: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

func TestCertificateAuthority(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"name": "w"})
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ca      string
		wantErr bool
	}{
		{"trusted CA", caFile, false},
		{"system roots reject the test CA", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, Options{BaseURL: srv.URL, CertificateAuthority: tt.ca}).GetWorkspace(context.Background(), "w")
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Options{BaseURL: srv.URL, CertificateAuthority: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("New with a missing CA file succeeded")
	}
}
