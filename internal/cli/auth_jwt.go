package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
)

// jwtParts is a JWT decoded without verification: the CLI reads its own
// token's claims (expiry, identity, scopes) for display and refresh
// decisions only; the server verifies tokens.
type jwtParts struct {
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
}

// decodeJWT decodes a compact JWS (three base64url parts, JSON header and
// claims); ok is false for anything else, e.g. an opaque token.
func decodeJWT(token string) (p jwtParts, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return p, false
	}
	for i, dst := range []*map[string]any{&p.Header, &p.Claims} {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil {
			return jwtParts{}, false
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil || *dst == nil {
			return jwtParts{}, false
		}
	}
	return p, true
}

// unsigned reports whether the token is an alg "none" JWT.
func (p jwtParts) unsigned() bool {
	alg, _ := p.Header["alg"].(string)
	return strings.EqualFold(alg, "none")
}

// numericClaim returns a NumericDate claim (seconds since the epoch).
func (p jwtParts) numericClaim(name string) (time.Time, bool) {
	var f float64
	switch v := p.Claims[name].(type) {
	case json.Number:
		n, err := v.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = n
	case float64:
		f = v
	default:
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// expiry returns the exp claim.
func (p jwtParts) expiry() (time.Time, bool) { return p.numericClaim("exp") }

func (p jwtParts) str(name string) string {
	s, _ := p.Claims[name].(string)
	return s
}

// strs returns a claim that is a string array or a space-separated string.
func (p jwtParts) strs(name string) []string {
	switch v := p.Claims[name].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// scopes returns the scope claim, else scp.
func (p jwtParts) scopes() []string {
	if _, ok := p.Claims["scope"]; ok {
		return p.strs("scope")
	}
	return p.strs("scp")
}

// email returns upn, else email, else preferred_username.
func (p jwtParts) email() string {
	for _, c := range []string{"upn", "email", "preferred_username"} {
		if s := p.str(c); s != "" {
			return s
		}
	}
	return ""
}

// refreshWindow is how close to its expiry a saved JWT is refreshed.
const refreshWindow = 5 * time.Minute

// expiresSoon reports whether token is a JWT that expires within
// refreshWindow of now. Opaque tokens and JWTs without exp never do.
func expiresSoon(token string, now time.Time) bool {
	p, ok := decodeJWT(token)
	if !ok {
		return false
	}
	exp, ok := p.expiry()
	return ok && exp.Sub(now) < refreshWindow
}

// remintUnsigned returns a new unsigned JWT with the claims of p, iat set
// to now and, when p has exp, the same lifetime (exp - iat; one hour when
// iat is missing).
func remintUnsigned(p jwtParts, now time.Time) (string, error) {
	claims := make(map[string]any, len(p.Claims))
	for k, v := range p.Claims {
		claims[k] = v
	}
	if exp, ok := p.expiry(); ok {
		lifetime := time.Hour
		if iat, ok := p.numericClaim("iat"); ok && exp.After(iat) {
			lifetime = exp.Sub(iat)
		}
		claims["exp"] = now.Add(lifetime).Unix()
	}
	claims["iat"] = now.Unix()
	return clientconfig.UnsignedJWT(claims)
}
