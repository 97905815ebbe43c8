package jwtverify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"

	"github.com/nmp-project/nmp/internal/authn"
)

var b64 = base64.RawURLEncoding.Strict()

// splitToken checks the compact form: exactly three parts of unpadded
// base64url characters (no whitespace, no padding), header and payload
// non-empty.
func splitToken(token string) ([3]string, *authn.InvalidToken) {
	var parts [3]string
	if strings.Count(token, ".") != 2 {
		return parts, reject(ReasonMalformed, "token must have three parts")
	}
	h, rest, _ := strings.Cut(token, ".")
	p, s, _ := strings.Cut(rest, ".")
	parts = [3]string{h, p, s}
	if h == "" || p == "" {
		return parts, reject(ReasonMalformed, "empty header or payload")
	}
	for _, part := range parts {
		for i := 0; i < len(part); i++ {
			if !isBase64URL(part[i]) {
				return parts, reject(ReasonMalformed, "parts must be unpadded base64url")
			}
		}
	}
	return parts, nil
}

// isBase64URL reports whether c is in the base64url alphabet (no padding).
func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

type header struct {
	alg    string
	kid    string // "" when absent
	typ    string // "" when absent
	hasTyp bool
	crit   bool
}

// parseHeader decodes the JOSE header into a map (exact, case-sensitive
// member names, as go-jose reads them). jku, x5u, jwk and x5c are never
// used to find keys.
func parseHeader(part string) (header, *authn.InvalidToken) {
	var h header
	raw, err := b64.DecodeString(part)
	if err != nil {
		return h, reject(ReasonMalformed, "header is not base64url")
	}
	var m map[string]json.RawMessage
	if err := strictUnmarshal(raw, &m); err != nil || m == nil {
		return h, reject(ReasonMalformed, "header is not a JSON object")
	}
	if err := json.Unmarshal(m["alg"], &h.alg); err != nil || h.alg == "" {
		return h, reject(ReasonMalformed, "header has no alg")
	}
	if k, ok := m["kid"]; ok && string(k) != "null" {
		if err := json.Unmarshal(k, &h.kid); err != nil {
			return h, reject(ReasonMalformed, "kid is not a string")
		}
	}
	if t, ok := m["typ"]; ok && string(t) != "null" {
		if err := json.Unmarshal(t, &h.typ); err != nil {
			return h, reject(ReasonMalformed, "typ is not a string")
		}
		h.hasTyp = true
	}
	_, h.crit = m["crit"]
	if _, ok := m["b64"]; ok { // RFC 7797 requires crit; never valid here
		h.crit = true
	}
	return h, nil
}

// decodeClaims decodes a base64url payload part into a claims object.
func decodeClaims(part string) (map[string]any, *authn.InvalidToken) {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return nil, reject(ReasonMalformed, "payload is not base64url")
	}
	return decodeClaimBytes(raw)
}

// decodeClaimBytes decodes a JSON claims object; numbers stay
// json.Number.
func decodeClaimBytes(raw []byte) (map[string]any, *authn.InvalidToken) {
	var m map[string]any
	if err := strictUnmarshal(raw, &m); err != nil || m == nil {
		return nil, reject(ReasonMalformed, "payload is not a JSON object")
	}
	return m, nil
}

// strictUnmarshal decodes exactly one JSON value with json.Number for
// numbers and nothing after it.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func issuerOf(claims map[string]any) (string, *authn.InvalidToken) {
	raw, ok := claims["iss"]
	if !ok || raw == nil {
		return "", reject(ReasonMissingClaim, "iss missing")
	}
	iss, ok := raw.(string)
	if !ok {
		return "", reject(ReasonMalformed, "iss is not a string")
	}
	return iss, nil
}
