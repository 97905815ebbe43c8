package extauthz_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// BenchmarkGatewayCheck compares one allowed decision (a Viewer lists a
// workspace's projects; unsigned token, embedded decision point) asked
// through the ext_authz gRPC server and through the HTTP callout
// (X-Forwarded-Method/-Uri, keep-alive), both over loopback plaintext:
// serial (latency: p50, p99) and parallel (throughput). Run:
//
//	go test -run '^$' -bench BenchmarkGatewayCheck -benchtime 3s ./internal/extauthz/
func BenchmarkGatewayCheck(b *testing.B) {
	engine := authztestEngine(b, store.RoleBinding{ID: "1", Principal: "bob", Workspace: "default", Role: "Viewer", Revision: 1})
	e := start(b, setup{dp: pdp.NewEmbedded(engine)})
	const method, path = "GET", "/apis/entities/v2/workspaces/default/projects"
	authorization := "Bearer " + unsignedToken(b, "bob", "bob@example.com", []string{"ml"}, nil)
	req := checkRequest(method, path, map[string]string{"authorization": authorization, "user-agent": "bench"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)

	grpcCheck := func() error {
		resp, err := e.client.Check(context.Background(), req)
		if err == nil && resp.GetOkResponse() == nil {
			b.Fatalf("not allowed: %v", resp)
		}
		return err
	}
	httpCheck := func() error {
		r, err := http.NewRequest(http.MethodGet, e.httpURL+"/apis/auth/authenticate", nil)
		if err != nil {
			return err
		}
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Uri", path)
		r.Header.Set("Authorization", authorization)
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-NMP-Authorized") != "true" {
			b.Fatalf("not allowed: %d", resp.StatusCode)
		}
		return nil
	}
	for _, tt := range []struct {
		name  string
		check func() error
	}{{"ext_authz-grpc", grpcCheck}, {"http-callout", httpCheck}} {
		b.Run(tt.name+"/serial", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := tt.check(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			var mu sync.Mutex
			var firstErr error
			begin := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tt.check(); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
				}
			})
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "checks/s")
		})
	}
}
