package jwtverify

import "strings"

// lookupClaim reads a mapped claim (subject_claim, email_claim,
// groups_claim). The whole name is tried as a top-level key first, so
// that namespaced claims with dots (Auth0's "https://example.com/groups")
// work; then, if it has dots, as a path through nested objects
// ("realm_access.roles", "ext.email"). A null value is absent.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok && v != nil {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for _, seg := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok || seg == "" {
			return nil, false
		}
		if cur, ok = m[seg]; !ok || cur == nil {
			return nil, false
		}
	}
	return cur, true
}
