package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/metrics"
)

// TestSetPathValuesAsServeMux: dispatch serves the match observe made,
// setting the wildcards itself; for every pattern of the server and
// values with escapes, slashes and non-ASCII, the values must be the
// router's own.
func TestSetPathValuesAsServeMux(t *testing.T) {
	s := newServer(Options{Config: config.Default(), Metrics: metrics.New()})
	s.routes()
	if len(s.patterns) < 30 {
		t.Fatalf("only %d patterns recorded", len(s.patterns))
	}
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	values := []struct {
		name, single, multi string
	}{
		{name: "plain", single: "ml-team", multi: "v2/workspaces/ml-team"},
		{name: "escaped slash", single: "a%2Fb", multi: "a%2Fb/c"},
		{name: "non-ASCII", single: "%C3%A9t%C3%A9", multi: "%C3%A9/x"},
		{name: "escaped percent and space", single: "100%25%20sure", multi: "x/100%25"},
		{name: "plus stays", single: "a+b", multi: "a+b"},
	}
	checked := 0
	for _, pattern := range s.patterns {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		names := wildcard.FindAllString(path, -1)
		for _, v := range values {
			escaped := wildcard.ReplaceAllStringFunc(path, func(w string) string {
				if strings.HasSuffix(w, "...}") {
					return v.multi
				}
				return v.single
			})
			// the router's values
			want := map[string]string{}
			var gotPattern string
			mux := http.NewServeMux()
			mux.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) {
				gotPattern = r.Pattern
				for _, n := range names {
					n = strings.TrimSuffix(strings.Trim(n, "{}"), "...")
					want[n] = r.PathValue(n)
				}
			})
			mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, escaped, nil))
			if gotPattern != pattern {
				t.Fatalf("%s: the router did not match %s to it", pattern, escaped)
			}
			// observe's match and setPathValues
			r := httptest.NewRequest(method, escaped, nil)
			if _, p := s.mux.Handler(r); p != pattern {
				t.Fatalf("%s: the server's router matched %s to %q", pattern, escaped, p)
			}
			setPathValues(r, pattern)
			for n, w := range want {
				if got := r.PathValue(n); got != w {
					t.Errorf("%s, %s: %s = %q, the router's %q", pattern, v.name, n, got, w)
				}
			}
			checked += len(want)
		}
	}
	if checked < 50 {
		t.Errorf("only %d wildcard values compared", checked)
	}
}

// TestRouteAsServeMux: observe routes a request for a literal pattern's
// path with s.literal and everything else with the router; the pattern
// must be the router's own for every method, on the server's patterns
// and on a set built to exercise the router's precedence rules.
func TestRouteAsServeMux(t *testing.T) {
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"}
	check := func(t *testing.T, s *Server, paths []string) (literal int) {
		t.Helper()
		for _, path := range paths {
			for _, m := range methods {
				r := httptest.NewRequest(m, path, nil)
				_, want := s.mux.Handler(r)
				if _, got := s.route(r); got != want {
					t.Errorf("%s %s: routed to %q, the router's %q", m, path, got, want)
				}
				if _, _, ok := s.literal.match(r); ok {
					literal++
				}
			}
		}
		return literal
	}
	t.Run("server patterns", func(t *testing.T) {
		s := newServer(Options{Config: config.Default(), Metrics: metrics.New()})
		s.routes()
		wildcard := regexp.MustCompile(`\{[^}]*\}`)
		var paths []string
		for _, pattern := range s.patterns {
			_, path, ok := strings.Cut(pattern, " ")
			if !ok {
				path = pattern
			}
			path = wildcard.ReplaceAllString(path, "x")
			// the path, with an escaped letter, and with a slash added
			paths = append(paths, path, path+"/", strings.Replace(path, "/a", "/%61", 1))
		}
		literals := 0
		for _, byMethod := range s.literal {
			literals += len(byMethod)
		}
		if n := check(t, s, paths); literals < 10 || n < literals {
			t.Errorf("%d requests routed by the literal table, of %d literal patterns", n, literals)
		}
	})
	t.Run("precedence", func(t *testing.T) {
		s := newServer(Options{Config: config.Default(), Metrics: metrics.New()})
		nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
		for _, p := range []string{"GET /a", "/a", "HEAD /b", "GET /b", "/c", "GET /d/{x}", "GET /d/e", "/f/", "GET /f/g", "POST /h/{rest...}", "POST /h/i"} {
			s.handleHTTP(p, nop)
		}
		paths := []string{"/a", "/b", "/c", "/d/e", "/d/z", "/f", "/f/g", "/f/h", "/h/i", "/h/i/j", "/%61", "/d/%65", "/a/", "/zzz", "/"}
		if n := check(t, s, paths); n < 20 {
			t.Errorf("only %d requests routed by the literal table", n)
		}
	})
}

// TestNewRequestID: request ids are version 4 UUIDs, and distinct.
func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := newRequestID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id {
			t.Fatalf("request id %q: %v, version %d, variant %v", id, err, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("request id %q twice", id)
		}
		seen[id] = true
	}
}
