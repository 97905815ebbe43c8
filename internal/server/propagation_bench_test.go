package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// BenchmarkPropagation measures how long a role change takes to change a
// decision where it matters (docs/benchmarks.md "Propagation"). Each
// iteration grants bob Viewer in a workspace, or revokes it, through the
// member API of one server, then asks the observer as fast as it can until
// its decision flips (200 after a grant, 403 after a revocation). The
// clock runs from sending the write to the first changed decision, and
// the benchmark reports the median and the 99th percentile of those
// times. Run with at least 100 changes:
//
//	go test ./internal/server -run '^$' -bench Propagation -benchtime 200x
type propagationObserver func(b *testing.B, allowed bool) bool

func BenchmarkPropagation(b *testing.B) {
	b.Run("same-process", func(b *testing.B) {
		srv := servertest.Start(b, func(c *config.Config) { c.Auth.Enabled = true })
		measurePropagation(b, srv.URL, decisionAt(srv.URL))
	})
	b.Run("replica-postgres", func(b *testing.B) {
		writer, observer := startReplicas(b)
		measurePropagation(b, writer.URL, decisionAt(observer.URL))
	})
	b.Run("external-opa", func(b *testing.B) {
		// nmp decides with its embedded evaluator here, so that the write
		// does not wait for OPA; the observer asks OPA itself, which learns
		// the change only through the long-polled bundle.
		srv, o := startWithExternalOPA(b, func(c *config.Config) { c.Auth.PolicyDecisionPointProvider = "embedded" })
		measurePropagation(b, srv.URL, opaDecision(o.URL))
	})
}

// opaDecision observes OPA's allow decision for bob reading the workspace.
func opaDecision(opaURL string) propagationObserver {
	input := `{"input": {"principal_id": "bob", "method": "GET", "path": "/apis/entities/v2/workspaces/prop"}}`
	return func(b *testing.B, want bool) bool {
		resp, err := benchClient.Post(opaURL+"/v1/data/authz/allow", "application/json", strings.NewReader(input))
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Result struct {
				Allowed bool `json:"allowed"`
			} `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("OPA allow: %d %v", resp.StatusCode, err)
		}
		return out.Result.Allowed == want
	}
}

// decisionAt observes the decision of the server at base: bob reading the
// workspace.
func decisionAt(base string) propagationObserver {
	return func(b *testing.B, want bool) bool {
		status := doRequest(b, "GET", base+"/apis/entities/v2/workspaces/prop", "bob", "")
		return (status == http.StatusOK) == want
	}
}

// measurePropagation runs b.N grant/revoke changes through writer and
// reports how long each took to be observed.
func measurePropagation(b *testing.B, writer string, observe propagationObserver) {
	b.Helper()
	if st := doRequest(b, "POST", writer+"/apis/entities/v2/workspaces", "alice", `{"name": "prop"}`); st != http.StatusCreated {
		b.Fatalf("create workspace: %d", st)
	}
	members := writer + "/apis/entities/v2/workspaces/prop/members"
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		grant := i%2 == 0
		start := time.Now()
		var st int
		if grant {
			st = doRequest(b, "POST", members+"?wait_role_propagation=false", "alice", `{"principal": "bob", "roles": ["Viewer"]}`)
		} else {
			st = doRequest(b, "DELETE", members+"/bob?wait_role_propagation=false", "alice", "")
		}
		if st != http.StatusCreated && st != http.StatusOK {
			b.Fatalf("change %d: status %d", i, st)
		}
		deadline := start.Add(30 * time.Second)
		for !observe(b, grant) {
			if time.Now().After(deadline) {
				b.Fatalf("change %d (grant=%v) not observed within 30 s", i, grant)
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, times)
}

// reportLatencies reports the median, 99th percentile and maximum of
// times.
func reportLatencies(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	ms := func(q float64) float64 {
		return float64(times[min(len(times)-1, int(q*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

func doRequest(b *testing.B, method, url, principal, body string) int {
	b.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-NMP-Principal-Id", principal)
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(fmt.Errorf("%s %s: %w", method, url, err))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		b.Fatal(err)
	}
	return resp.StatusCode
}
