package opatest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// TestLifecycle: the real opa starts on a kernel-chosen port, a frozen
// OPA accepts but does not answer, a thawed one answers again, a killed
// one refuses, and a restarted one answers on the same address.
func TestLifecycle(t *testing.T) {
	o := opatest.Start(t)
	get := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	if err := get(5 * time.Second); err != nil {
		t.Fatalf("running opa: %v", err)
	}
	o.Freeze()
	if err := get(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen opa: %v, want a timeout", err)
	}
	o.Thaw()
	if err := get(5 * time.Second); err != nil {
		t.Fatalf("thawed opa: %v", err)
	}
	addr := o.Addr
	o.Kill()
	if err := get(5 * time.Second); err == nil {
		t.Fatal("killed opa still answers")
	}
	o.Restart()
	if o.Addr != addr {
		t.Fatalf("restarted on %s, want %s", o.Addr, addr)
	}
	if err := get(5 * time.Second); err != nil {
		t.Fatalf("restarted opa: %v", err)
	}
}
