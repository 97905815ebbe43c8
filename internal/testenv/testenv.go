// Package testenv decides what a test does when an outside component
// (PostgreSQL, nginx, opa, Chromium) is missing: locally it skips with a
// message; with NMP_TEST_REQUIRE_ALL=1 (set by .ci/run) it fails, so CI
// never passes a test that did not run.
package testenv

import (
	"os"
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
