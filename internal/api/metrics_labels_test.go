package api_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/server/servertest"
)

// requestSeries returns the nmp_http_requests_total series of /metrics.
func requestSeries(t *testing.T, srv *servertest.Server) []string {
	t.Helper()
	_, _, body := call(t, "GET", srv.URL+"/metrics", "")
	var series []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "nmp_http_requests_total{") {
			series = append(series, line)
		}
	}
	return series
}

// TestMetricLabelsBounded: requests with random methods and paths, from
// an anonymous caller the server refuses, create a bounded number of
// series; the method label is from a fixed set; a request refused before
// routing (401) is labelled with the route it asked for.
func TestMetricLabelsBounded(t *testing.T) {
	srv := servertest.Start(t, production())
	status, _, _ := call(t, "GET", srv.URL+ws+"/default", "")
	if status != http.StatusUnauthorized {
		t.Fatalf("anonymous GET: %d, want 401", status)
	}
	want := `nmp_http_requests_total{code="401",method="GET",route="/apis/entities/v2/workspaces/{name}"} 1`
	if series := requestSeries(t, srv); !containsLine(series, want) {
		t.Fatalf("a 401 on a known route is not labelled with it: want %q in\n%s", want, strings.Join(series, "\n"))
	}

	rng := rand.New(rand.NewPCG(1, 2))
	token := func(n int) string {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	for i := range 1000 {
		method := methods[rng.IntN(len(methods))]
		if i%2 == 0 {
			method = strings.ToUpper(token(1 + rng.IntN(10)))
		}
		path := "/" + token(1+rng.IntN(12)) + "/" + token(rng.IntN(8))
		if i%3 == 0 {
			path = ws + "/" + token(8)
		}
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := servertest.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	series := requestSeries(t, srv)
	allowed := map[string]bool{"other": true}
	for _, m := range methods {
		allowed[m] = true
	}
	for _, s := range series {
		i := strings.Index(s, `method="`)
		m := s[i+len(`method="`):]
		m = m[:strings.IndexByte(m, '"')]
		if !allowed[m] {
			t.Errorf("method label %q outside the fixed set: %s", m, s)
		}
	}
	// 8 method labels × a few routes and codes; raw methods or paths
	// would make hundreds.
	if len(series) > 60 {
		t.Fatalf("%d series after 1,000 random requests, want a bounded few:\n%s", len(series), strings.Join(series, "\n"))
	}
	t.Log(fmt.Sprint(len(series), " series"))
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
