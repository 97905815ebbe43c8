package authz

import (
	"net/url"
	"strings"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"alias", "/v2/workspaces", "/apis/entities/v2/workspaces", true},
		{"alias below", "/v2/workspaces/a/members/%2A", "/apis/entities/v2/workspaces/a/members/%2A", true},
		{"not the alias", "/v2/workspacesx", "/v2/workspacesx", true},
		{"trailing slash dropped once", "/apis/entities/v2/workspaces/", "/apis/entities/v2/workspaces", true},
		{"root", "/", "/", true},
		{"encoded slash stays", "/apis/entities/v2/workspaces/a%2Fb", "/apis/entities/v2/workspaces/a%2Fb", true},
		{"double slash", "/apis//x", "", false},
		{"two trailing slashes", "/apis/x//", "", false},
		{"dot", "/apis/./x", "", false},
		{"dotdot", "/apis/../x", "", false},
		{"encoded dotdot", "/apis/%2e%2E/x", "", false},
		{"bad escape", "/apis/%zz", "", false},
		{"relative", "apis", "", false},
		{"query cut", "/apis/x?y=1#z", "/apis/x", true},
		{"fragment cut", "/v2/workspaces#x", "/apis/entities/v2/workspaces", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CanonicalPath(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("CanonicalPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzCanonicalPath: accepted paths are absolute, idempotent under a
// second pass, and free of empty or dot segments after decoding.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/v2/workspaces/a", "/apis/entities/v2/workspaces/%2A/", "/a/%2e%2e", "//", "/x%2Fy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := CanonicalPath(in)
		if !ok {
			return
		}
		again, ok2 := CanonicalPath(out)
		if !ok2 || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, ok2)
		}
		if out == "/" {
			return
		}
		for _, seg := range strings.Split(out[1:], "/") {
			d, err := url.PathUnescape(seg)
			if err != nil || d == "" || d == "." || d == ".." {
				t.Fatalf("accepted unsafe segment %q in %q", seg, out)
			}
		}
	})
}

func TestLowerMethod(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "Get", "TRACE", "CONNECT", "PROPFIND", ""} {
		if got, want := lowerMethod(m), strings.ToLower(m); got != want {
			t.Errorf("lowerMethod(%q) = %q, want %q", m, got, want)
		}
	}
}
