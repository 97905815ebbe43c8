// Package testenv decides what a test does when an outside component
// (PostgreSQL, nginx, opa, Chromium) is missing: locally it skips with a
// message; with NMP_TEST_REQUIRE_ALL=1 (set by .ci/run) it fails, so CI
// never passes a test that did not run. It also holds small helpers
// shared by tests.
package testenv

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
)

// Missing reports a missing component.
func Missing(t testing.TB, component, why string) {
	t.Helper()
	if os.Getenv("NMP_TEST_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is required here (NMP_TEST_REQUIRE_ALL=1) but missing: %s", component, why)
	}
	t.Skipf("%s is missing (%s): test skipped; CI installs it and runs this test", component, why)
}

// Close closes c and reports a failure as a test error; for defer and
// t.Cleanup: defer testenv.Close(t, resp.Body).
func Close(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// Buffer is a goroutine-safe byte buffer, for capturing the logs and
// output of servers and commands that write concurrently.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
