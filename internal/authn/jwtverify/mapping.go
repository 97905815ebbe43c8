package jwtverify

import "github.com/nmp-project/nmp/internal/authn"

// MapClaims maps claims that were verified by other means (an RFC 7662
// introspection response) to a principal with exactly the rules applied
// to a JWT's claims (authn.md "Claims mapping", step 7): subject claim,
// reserved prefixes, email, groups, scopes and scope prefix. It does not
// check issuer, audience or times. Refusals are *authn.InvalidToken.
func (v *Verifier) MapClaims(claims map[string]any, iss string) (*authn.Principal, error) {
	p, it := v.principal(claims, iss, false)
	if it != nil {
		return nil, it
	}
	return p, nil
}
