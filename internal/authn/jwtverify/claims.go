package jwtverify

import (
	"encoding/json"
	"math"
	"strings"
	"unicode"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/ident"
)

// numeric reads a NumericDate claim: absent or null → present false; a
// JSON number → its value; anything else → malformed.
func numeric(claims map[string]any, name string) (float64, bool, *authn.InvalidToken) {
	raw, ok := claims[name]
	if !ok || raw == nil {
		return 0, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return 0, false, reject(ReasonMalformed, "%s is not numeric", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, reject(ReasonMalformed, "%s is not a finite number", name)
	}
	return f, true, nil
}

// checkTimes applies step 5 with leeway L: reject if now > exp + L,
// now < nbf − L or iat > now + L. iat is always required, exp only when
// requireExp (signed tokens). It returns exp (+Inf when absent).
func (v *Verifier) checkTimes(claims map[string]any, now float64, requireExp bool) (float64, *authn.InvalidToken) {
	exp, hasExp, it := numeric(claims, "exp")
	if it != nil {
		return 0, it
	}
	if !hasExp && requireExp {
		return 0, reject(ReasonMissingClaim, "exp missing")
	}
	iat, hasIat, it := numeric(claims, "iat")
	if it != nil {
		return 0, it
	}
	if !hasIat {
		return 0, reject(ReasonMissingClaim, "iat missing")
	}
	nbf, hasNbf, it := numeric(claims, "nbf")
	if it != nil {
		return 0, it
	}
	L := v.leeway
	switch {
	case hasExp && now > exp+L:
		return 0, reject(ReasonExpired, "token expired")
	case hasNbf && now < nbf-L:
		return 0, reject(ReasonNotYetValid, "token not valid yet (nbf)")
	case iat > now+L:
		return 0, reject(ReasonIssuedInFuture, "token issued in the future (iat)")
	}
	if !hasExp {
		exp = math.Inf(1)
	}
	return exp, nil
}

// checkAudience applies step 6: aud, a string or an array of strings,
// contains the expected audience.
func (v *Verifier) checkAudience(claims map[string]any) *authn.InvalidToken {
	switch aud := claims["aud"].(type) {
	case nil:
		return reject(ReasonAudienceMismatch, "aud missing")
	case string:
		if aud == v.audience {
			return nil
		}
	case []any:
		found := false
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return reject(ReasonMalformed, "aud array holds a non-string")
			}
			found = found || s == v.audience
		}
		if found {
			return nil
		}
	default:
		return reject(ReasonMalformed, "aud is neither a string nor an array")
	}
	return reject(ReasonAudienceMismatch, "aud does not contain the expected audience")
}

// principal applies step 7 and the claims mapping (authn.md "Claims
// mapping"). requireSub is set for unsigned tokens, where sub itself is
// required.
func (v *Verifier) principal(claims map[string]any, iss string, requireSub bool) (*authn.Principal, *authn.InvalidToken) {
	sub, ok := claims["sub"].(string)
	if !ok && claims["sub"] != nil {
		return nil, reject(ReasonInvalidSubject, "sub is not a string")
	}
	if requireSub && sub == "" {
		return nil, reject(ReasonMissingClaim, "sub missing")
	}
	id := ""
	if v.subjectClaim != "sub" {
		switch s := claims[v.subjectClaim].(type) {
		case nil:
		case string:
			id = s
		default:
			return nil, reject(ReasonInvalidSubject, "%s is not a string", v.subjectClaim)
		}
	}
	if id == "" {
		id = sub
	}
	switch {
	case id == "":
		return nil, reject(ReasonMissingClaim, "sub missing")
	case ident.Reserved(id):
		return nil, reject(ReasonReservedSubject, "subject %s uses a reserved prefix", clip(id))
	case !ident.ValidPrincipalID(id):
		return nil, reject(ReasonInvalidSubject, "subject is not a valid principal id")
	}
	p := &authn.Principal{ID: id}
	if jti, ok := claims["jti"].(string); ok && len(jti) <= 256 && !hasControl(jti) {
		p.TokenID = jti // reported by the gateway callout; allowed in logs
	}
	warn := func(claim string, n int) {
		// Never the values: they are part of the token.
		v.log.Warn("dropped invalid token claim values", "claim", claim, "dropped", n, "iss", iss, "sub", id)
	}

	// Email.
	if raw, ok := claims[v.emailClaim]; ok && raw != nil {
		if s, ok := raw.(string); ok && ident.ValidEmail(s) && !hasControl(s) {
			p.Email = s
		} else if raw != "" {
			warn(v.emailClaim, 1)
		}
	}

	// Groups: groups_claim, else cognito:groups.
	gclaim := v.groupsClaim
	graw, ok := claims[gclaim]
	if !ok || graw == nil {
		gclaim = "cognito:groups"
		graw = claims[gclaim]
	}
	var items []string
	dropped := 0
	switch g := graw.(type) {
	case nil:
	case string:
		for _, s := range strings.Split(g, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	case []any:
		for _, e := range g {
			if s, ok := e.(string); ok {
				items = append(items, s)
			} else {
				dropped++
			}
		}
	default:
		dropped++
	}
	for _, g := range items {
		if !ident.ValidPrincipalID(g) || ident.Reserved(g) {
			dropped++
			continue
		}
		p.Groups = append(p.Groups, g)
	}
	if dropped > 0 {
		warn(gclaim, dropped)
	}
	if len(p.Groups) > maxGroups {
		return nil, reject(ReasonTooManyGroups, "more than %d groups", maxGroups)
	}

	// Scopes: scope, else scp.
	sraw, ok := claims["scope"]
	if !ok || sraw == nil {
		sraw = claims["scp"]
	}
	var scopes []string
	switch s := sraw.(type) {
	case string:
		scopes = strings.Fields(s)
	case []any:
		for _, e := range s {
			if str, ok := e.(string); ok && str != "" && !strings.ContainsFunc(str, unicode.IsSpace) {
				scopes = append(scopes, str)
			}
		}
	}
	for _, s := range scopes {
		if v.scopePrefix != "" {
			s = strings.TrimPrefix(s, v.scopePrefix)
		}
		if s == "" || hasControl(s) || ident.PermissionShaped(s) {
			continue
		}
		p.Scopes = append(p.Scopes, s)
	}
	return p, nil
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }
