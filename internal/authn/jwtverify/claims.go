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
		return 0, false, rejectClaim(ReasonMalformed, name, "%s is not numeric", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, rejectClaim(ReasonMalformed, name, "%s is not a finite number", name)
	}
	if f < 0 || f > maxNumericDate {
		return 0, false, rejectClaim(ReasonMalformed, name, "%s is outside 1970 to 9999", name)
	}
	return f, true, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z: a NumericDate beyond it is no
// date any IdP issues (and overflows time.Time arithmetic).
const maxNumericDate = 253402300799

// checkTimes applies step 5 with leeway L: reject if now > exp + L,
// now < nbf − L or iat > now + L. iat is always required, exp only when
// requireExp (signed tokens and RFC 9068 ones). Then the lifetime limit
// (auth.oidc.max_token_lifetime_seconds, M): exp − iat > M is refused
// without leeway, both times being the IdP's; without iat (never for
// tokens checked here today) exp − now > M + L. A token without exp has
// no lifetime to limit (unsigned development tokens). It returns exp
// (+Inf when absent).
func (v *Verifier) checkTimes(claims map[string]any, now float64, requireExp bool) (float64, *authn.InvalidToken) {
	exp, hasExp, it := numeric(claims, "exp")
	if it != nil {
		return 0, it
	}
	if !hasExp && requireExp {
		return 0, rejectClaim(ReasonMissingClaim, "exp", "exp missing")
	}
	iat, hasIat, it := numeric(claims, "iat")
	if it != nil {
		return 0, it
	}
	if !hasIat {
		return 0, rejectClaim(ReasonMissingClaim, "iat", "iat missing")
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
		return math.Inf(1), nil
	}
	if it := v.checkLifetime(exp, iat, hasIat, now); it != nil {
		return 0, it
	}
	return exp, nil
}

// checkLifetime refuses a token living longer than the configured
// maximum (0 = no limit).
func (v *Verifier) checkLifetime(exp, iat float64, hasIat bool, now float64) *authn.InvalidToken {
	M := v.maxLifetime
	switch {
	case M <= 0:
		return nil
	case hasIat && exp-iat > M:
		return reject(ReasonLifetimeExceeded, "token lifetime exp - iat of %.0f s exceeds %.0f s", exp-iat, M)
	case !hasIat && exp-now > M+v.leeway:
		return reject(ReasonLifetimeExceeded, "token expires in %.0f s, more than %.0f s", exp-now, M)
	}
	return nil
}

// checkAudience applies step 6: aud, a string or an array of strings,
// contains the expected audience.
func (v *Verifier) checkAudience(claims map[string]any) *authn.InvalidToken {
	switch aud := claims["aud"].(type) {
	case nil:
		return rejectClaim(ReasonAudienceMismatch, "aud", "aud missing")
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
// mapping"). subject_claim, email_claim and groups_claim may name nested
// claims (see lookupClaim). requireSub is set for unsigned tokens, where
// sub itself is required. A mapped claim missing from the token is
// reported once per issuer and claim (missingClaim).
func (v *Verifier) principal(claims map[string]any, iss string, requireSub bool) (*authn.Principal, *authn.InvalidToken) {
	sub, ok := claims["sub"].(string)
	if !ok && claims["sub"] != nil {
		return nil, rejectClaim(ReasonInvalidSubject, "sub", "sub is not a string")
	}
	if requireSub && sub == "" {
		return nil, rejectClaim(ReasonMissingClaim, "sub", "sub missing")
	}
	id := ""
	if v.subjectClaim != "sub" {
		raw, found := lookupClaim(claims, v.subjectClaim)
		switch s := raw.(type) {
		case nil:
		case string:
			id = s
		default:
			return nil, rejectClaim(ReasonInvalidSubject, v.subjectClaim, "%s is not a string", v.subjectClaim)
		}
		if !found {
			v.missingClaim(iss, "auth.oidc.subject_claim", v.subjectClaim, "falling back to sub")
		}
	}
	if id == "" {
		id = sub
	}
	switch {
	case id == "":
		return nil, rejectClaim(ReasonMissingClaim, "sub", "sub missing")
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

	// Email (what auth.admin_email and email bindings match).
	if raw, ok := lookupClaim(claims, v.emailClaim); ok {
		if s, ok := raw.(string); ok && ident.ValidEmail(s) && !hasControl(s) {
			p.Email = s
		} else if raw != "" {
			warn(v.emailClaim, 1)
		}
	} else {
		v.missingClaim(iss, "auth.oidc.email_claim", v.emailClaim, "the principal has no email")
	}

	// Groups: groups_claim, else cognito:groups. A string is one group
	// or a comma-separated list (never split on spaces: a display name
	// such as "Data Science" must not become two groups).
	gclaim := v.groupsClaim
	graw, ok := lookupClaim(claims, gclaim)
	if !ok {
		if graw, ok = claims["cognito:groups"]; ok && graw != nil {
			gclaim = "cognito:groups"
		} else {
			v.missingClaim(iss, "auth.oidc.groups_claim", v.groupsClaim, "the principal has no groups")
		}
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
		return nil, rejectClaim(ReasonTooManyGroups, gclaim, "more than %d groups", maxGroups)
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

// maxMissingClaimWarnings bounds the (issuer, claim) pairs remembered;
// unsigned tokens name any issuer they like.
const maxMissingClaimWarnings = 1000

// missingClaim logs, once per issuer and claim, that a mapped claim is
// absent from an otherwise valid token: a configuration problem (wrong
// claim name, or no mapper at the IdP) rather than a refusal.
func (v *Verifier) missingClaim(iss, setting, claim, effect string) {
	k := iss + "\x00" + claim
	if _, seen := v.warned.Load(k); seen {
		return
	}
	if v.warnedCount.Load() >= maxMissingClaimWarnings {
		return
	}
	if _, seen := v.warned.LoadOrStore(k, struct{}{}); seen {
		return
	}
	v.warnedCount.Add(1)
	v.log.Warn("configured token claim missing (logged once per issuer and claim)", "event", "config",
		"setting", setting, "claim", claim, "iss", clip(iss), "effect", effect)
}
