package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nmp-project/nmp/internal/metrics"
)

// TestLimitConcurrency fills every slot with requests held in a blocking
// handler: the next request is refused at once with 503 overloaded and
// Retry-After, and counted; health probes still answer; a freed slot
// serves again.
func TestLimitConcurrency(t *testing.T) {
	const limit = 3
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	m := metrics.New()
	srv := httptest.NewServer(limitConcurrency(h, limit, m))
	defer srv.Close()
	var releaseAll sync.Once
	// Runs before srv.Close, also when the test fails: held requests end.
	defer releaseAll.Do(func() { close(release) })

	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	held := make(chan int, limit)
	for range limit {
		go func() {
			resp, err := http.Get(srv.URL + "/block")
			if err != nil {
				held <- 0
				return
			}
			_ = resp.Body.Close()
			held <- resp.StatusCode
		}()
		<-entered // this request holds a slot
	}

	resp := get("/other")
	var body struct{ Detail, Code string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body.Code != "overloaded" || body.Detail == "" ||
		resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d %+v Retry-After %q, want 503 overloaded with Retry-After 1",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if got := testutil.ToFloat64(m.Overloaded); got != 1 {
		t.Errorf("nmp_http_overloaded_total = %v, want 1", got)
	}
	for _, p := range []string{"/health/live", "/health/ready"} {
		resp := get(p)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s while full: %d, want 200 (probes are exempt)", p, resp.StatusCode)
		}
	}

	release <- struct{}{} // one held request finishes and frees its slot
	if code := <-held; code != http.StatusOK {
		t.Fatalf("held request: %d", code)
	}
	resp = get("/other")
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after a slot was freed: %d, want 200", resp.StatusCode)
	}
	releaseAll.Do(func() { close(release) })
	for range limit - 1 {
		<-held
	}
}
