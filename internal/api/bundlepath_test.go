package api

import "testing"

// TestIsBundlePath: the bundle path is recognised segment by segment after
// percent-decoding each one, as the policy matches paths, and nothing
// else is: same segment count, a different segment, an escaped slash.
func TestIsBundlePath(t *testing.T) {
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"the path", BundlePath, true},
		{"escaped letters", "/apis/auth/v2/iam/opa%2Dbundle.tar.gz", true},
		{"every segment escaped", "/%61pis/%61uth/v%32/i%61m/opa-bundle.tar.gz", true},
		{"a PDP entrypoint (same segment count)", "/apis/auth/v2/authz/allow", false},
		{"last segment differs", "/apis/auth/v2/iam/opa-bundle.tar", false},
		{"first segment differs", "/apiz/auth/v2/iam/opa-bundle.tar.gz", false},
		{"escaped slash joins two segments", "/apis/auth/v2%2Fiam/opa-bundle.tar.gz", false},
		{"bad escape", "/apis/auth/v2/iam/opa-bundle.tar.g%zz", false},
		{"trailing slash", BundlePath + "/", false},
		{"no leading slash", "apis/auth/v2/iam/opa-bundle.tar.gz/", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isBundlePath(tt.path); got != tt.want {
				t.Errorf("isBundlePath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
