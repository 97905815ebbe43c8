package server_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/server/servertest"
)

// BenchmarkKeyPropagation measures how long an access key's suspension
// (and unsuspension) takes to be enforced (docs/benchmarks.md "Access-key
// changes"): each iteration suspends the key, or unsuspends it, through
// the API of one server, then uses the key at the observer as fast as it
// can until the answer flips (401 after a suspension, 200 after an
// unsuspension). The observer has the key's state cached before each
// change, so what is measured is the notification, not a cache miss.
//
//	go test ./internal/server -run '^$' -bench KeyPropagation -benchtime 200x
func BenchmarkKeyPropagation(b *testing.B) {
	b.Run("same-process", func(b *testing.B) {
		srv := servertest.Start(b, keysMode)
		srv.WaitReady(b)
		measureKeyPropagation(b, srv.URL, srv.URL)
	})
	b.Run("replica-postgres", func(b *testing.B) {
		a, o := startKeyReplicas(b)
		measureKeyPropagation(b, a.URL, o.URL)
	})
}

func measureKeyPropagation(b *testing.B, writer, observer string) {
	b.Helper()
	alice := as("alice@example.com")
	jti, token := mint(b, writer, alice, `{"scopes": ["platform:read"]}`)
	use := func() int {
		req, err := http.NewRequest("GET", observer+"/apis/entities/v2/workspaces", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := benchClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		return resp.StatusCode
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		suspend := i%2 == 0
		want, action := http.StatusUnauthorized, "/suspend"
		if !suspend {
			want, action = http.StatusOK, "/unsuspend"
		}
		b.StopTimer()
		for range 2 { // the observer holds the current state in its cache
			if st := use(); st == want {
				b.Fatalf("change %d: already %d before the change", i, st)
			}
		}
		b.StartTimer()
		start := time.Now()
		if st, _, raw := do(b, writer, alice, "POST", keysPath+"/"+jti+action, ""); st != http.StatusOK {
			b.Fatalf("change %d: %d %s", i, st, raw)
		}
		deadline := start.Add(30 * time.Second)
		for use() != want {
			if time.Now().After(deadline) {
				b.Fatalf("change %d not enforced within 30 s", i)
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, times)
}
