package clientconfig

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// TestUpdateLockWaitEndsWithContext: while another process holds the
// config lock, an update whose command was interrupted (its context
// cancelled, before or during the wait) returns promptly with an error
// matching the context's, well before the 30 s lock timeout, and writes
// nothing.
func TestUpdateLockWaitEndsWithContext(t *testing.T) {
	tests := []struct {
		name        string
		cancelFirst bool // else cancelled once the update has started
	}{
		{"cancelled before the update", true},
		{"cancelled while it waits", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			held := flock.New(path + ".lock")
			if err := held.Lock(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = held.Unlock() }()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			done := make(chan error, 1)
			if tt.cancelFirst {
				cancel()
			}
			go func() {
				close(started)
				done <- UpdateContext(ctx, path, addContext("a"))
			}()
			if !tt.cancelFirst {
				<-started
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want one matching context.Canceled", err)
				}
			case <-time.After(lockTimeout / 2):
				t.Fatal("the update kept waiting for the lock after its context was cancelled")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("config written after an interrupted update: %v", err)
			}
		})
	}
}
