package api

import (
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
)

// encoded is what writeJSON writes for v.
func encoded(v any) string {
	w := httptest.NewRecorder()
	writeJSON(w, 200, v)
	return w.Body.String()
}

// awkward strings: HTML characters, escapes, non-ASCII, line separators,
// invalid UTF-8.
var awkward = []string{"", "permission_granted", `a<b>&c`, `q"\`, "tab\tnl\n", "é ü 世界", "\u2028\u2029", "bad \xff utf8", "\x00\x1f\x7f"}

// TestLeanAnswersAreByteIdentical: the answers written without
// reflection are byte for byte what encoding/json writes.
func TestLeanAnswersAreByteIdentical(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		for _, reason := range awkward {
			want := encoded(map[string]any{"result": map[string]any{"allowed": allowed, "reason": reason,
				"headers": map[string]string{authn.HeaderAuthorized: boolLabel(allowed)}}})
			if got := string(appendAllowResult(nil, authz.Decision{Allowed: allowed, Reason: reason})); got != want {
				t.Errorf("allow %v %q:\n got %s\nwant %s", allowed, reason, got, want)
			}
		}
		for _, name := range []string{"allowed", "has_role"} {
			if got, want := string(appendBoolResult(nil, name, allowed)), encoded(map[string]any{"result": map[string]bool{name: allowed}}); got != want {
				t.Errorf("%s %v: got %s want %s", name, allowed, got, want)
			}
		}
	}
	// The callout's answers, against the maps it used to encode.
	if got, want := string(bypassedBody), encoded(map[string]any{"principal": nil, "token_kind": nil, "email": nil,
		"groups": []string{}, "scopes": []string{}, "jti": nil}); got != want {
		t.Errorf("bypassed: got %s want %s", got, want)
	}
	principals := []*authn.Principal{{ID: "u-1"}, {ID: "u-1", Email: "a@example.com", Groups: []string{}, Scopes: []string{}}}
	for i, s := range awkward {
		principals = append(principals, &authn.Principal{ID: s, Email: s, TokenID: s, AccessKey: i%2 == 0,
			Groups: []string{s, "g"}, Scopes: awkward[:i]})
	}
	for _, p := range principals {
		nullable := func(s string) any {
			if s == "" {
				return nil
			}
			return s
		}
		orEmpty := func(xs []string) []string {
			if xs == nil {
				return []string{}
			}
			return xs
		}
		kind := "oidc_access_token"
		if p.AccessKey {
			kind = "access_key"
		}
		want := encoded(map[string]any{"principal": p.ID, "token_kind": kind, "email": nullable(p.Email),
			"groups": orEmpty(p.Groups), "scopes": orEmpty(p.Scopes), "jti": nullable(p.TokenID)})
		if got := string(appendCalloutBody(nil, p)); got != want {
			t.Errorf("callout %+v:\n got %s\nwant %s", p, got, want)
		}
	}
}

// fastSeeds are bodies for the one-pass reader: accepted ones and near
// misses it must leave to the validating reader.
var fastSeeds = []string{
	`{"input": {"principal_id": "alice@example.com", "principal_groups": ["ml-readers"], "method": "GET", "path": "/v2/workspaces/ml-team"}}`,
	`{"input":{"method":"GET","path":"/","scopes":[],"principal_email":null}}`,
	`{"input":{"method":"GET","path":"/","scopes":["workspaces.read"]}}`,
	`{"input":{"method":"GET","path":"/","method":"PUT"}}`,
	`{"input":{"method":"GET","path":"/x\u0041"}}`,
	`{"input":{"method":"GET","path":"é"}}`,
	`{"input":{"method":"GET","path":"/","extra":1}}`,
	`{"input":{"method":"GET","path":"/"},"input":{"method":"PUT","path":"/"}}`,
	`{"input":{"method":"GET","path":"/"}} x`,
	`{"input":{"method":"GET","path":"/","principal_groups":["a",null]}}`,
	`{"input": {"principal_id": "a", "workspace": "w", "permissions": ["projects.read"], "role": "Admin", "method": "GET", "path": "/"}}`,
	`{"input": {"principal_id": "a", "workspace": "w", "permissions": []}}`,
	`{"input": {"principal_id": "a", "workspace": "w", "role": ""}}`,
	`{"input":{}}`, `{"input":null}`, `{}`, ``, `[]`, `{"input":{"method":nul}}`,
}

// FuzzPDPFastInput: whatever the one-pass reader accepts, the validating
// reader accepts with the same typed input (and so the same decision);
// whatever it refuses is left to the validating reader, whose errors are
// the entrypoints' errors.
func FuzzPDPFastInput(f *testing.F) {
	for _, s := range fastSeeds {
		for ep := range pdpEntrypoints {
			f.Add(s, uint8(ep))
		}
	}
	f.Fuzz(func(t *testing.T, body string, ep uint8) {
		entrypoint := pdpEntrypoints[int(ep)%len(pdpEntrypoints)]
		fast, ok := fastPDPInput(entrypoint, []byte(body))
		if !ok {
			return
		}
		slow, err := validatedPDPInput(entrypoint, []byte(body))
		if err != nil {
			t.Fatalf("%s %q: one-pass reader accepted, validating reader refused: %v", entrypoint, body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s %q:\none-pass   %+v\nvalidating %+v", entrypoint, body, fast, slow)
		}
	})
}

// TestPDPFastInputCoversTheCommonBodies: the well-formed bodies of the
// entrypoints take the one-pass reader.
func TestPDPFastInputCoversTheCommonBodies(t *testing.T) {
	for _, tc := range []struct{ entrypoint, body string }{
		{"allow", fastSeeds[0]}, {"allow", fastSeeds[1]}, {"allow", fastSeeds[5]},
		{"has_permissions", fastSeeds[10]}, {"has_role", fastSeeds[10]},
	} {
		if _, ok := fastPDPInput(tc.entrypoint, []byte(tc.body)); !ok {
			t.Errorf("%s %s: not taken by the one-pass reader", tc.entrypoint, tc.body)
		}
	}
	for _, body := range fastSeeds[2:5] {
		if _, ok := fastPDPInput("allow", []byte(body)); ok {
			t.Errorf("%s: taken by the one-pass reader", body)
		}
	}
}
