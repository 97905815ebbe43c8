package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitReady(t *testing.T) {
	s := New("database", "policy_feed")
	s.Set("database", nil)

	// Not ready: the wait ends with the context and names what is missing.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "policy_feed not checked yet") {
		t.Fatalf("got %v", err)
	}

	// A failing report keeps it waiting; the first success ends the wait.
	done := make(chan error, 1)
	go func() { done <- s.WaitReady(context.Background()) }()
	s.Set("policy_feed", errors.New("change feed interrupted"))
	select {
	case err := <-done:
		t.Fatalf("ready while the feed is down: %v", err)
	default:
	}
	s.Set("policy_feed", nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
