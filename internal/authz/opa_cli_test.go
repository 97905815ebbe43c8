package authz_test

import (
	"os/exec"
	"testing"

	"github.com/nmp-project/nmp/internal/testenv"
)

// TestOPAUnitTests runs the Rego unit tests with the opa CLI (CI installs
// it; locally the test skips when opa is not on PATH).
func TestOPAUnitTests(t *testing.T) {
	opa, err := exec.LookPath("opa")
	if err != nil {
		testenv.Missing(t, "opa", "not on PATH")
	}
	for _, args := range [][]string{{"check", "--strict", "policy"}, {"test", "--timeout", "120s", "policy"}} {
		out, err := exec.Command(opa, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("opa %v: %v\n%s", args, err, out)
		}
		t.Logf("opa %v: %s", args, out)
	}
}
