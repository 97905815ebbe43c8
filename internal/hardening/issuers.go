package hardening

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/nmp-project/nmp/internal/authn"
)

// acceptedAlgs are the signature algorithms token validation accepts
// (the allow-list of internal/authn/jwtverify).
var acceptedAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "ES256": true, "ES384": true, "PS256": true, "EdDSA": true,
}

// issuerProbe is what one issuer's discovery document and key set showed.
type issuerProbe struct {
	issuer string
	https  bool
	// discovery and jwks say whether each answered ("" when not tried).
	discovery, jwks string
	algs            []string // signing algorithms of its keys, sorted
	problems        []string // why it is not fine; empty = fine
	cannotRun       bool     // the probe itself could not run (never a pass)
}

func (p *issuerProbe) severity() Severity {
	switch {
	case p.cannotRun:
		return Unknown
	case len(p.problems) > 0:
		return Warning
	}
	return Pass
}

func (p *issuerProbe) line() string {
	scheme := "https"
	if !p.https {
		scheme = "http (no TLS)"
	}
	algs := "none"
	if len(p.algs) > 0 {
		algs = strings.Join(p.algs, " ")
	}
	s := fmt.Sprintf("%s: %s; discovery %s; JWKS %s; signing algorithms %s", p.issuer, scheme, p.discovery, p.jwks, algs)
	if len(p.problems) > 0 {
		s += " — " + strings.Join(p.problems, "; ")
	}
	return s
}

// jwk is the part of a JSON Web Key the probe reads (no key material).
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
}

// keyAlg is the algorithm a key signs with: its alg, else what its type
// implies.
func keyAlg(k jwk) string {
	if k.Alg != "" {
		return k.Alg
	}
	switch k.Kty {
	case "RSA":
		return "RSA (alg not set)"
	case "EC":
		return map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[k.Crv]
	case "OKP":
		return "EdDSA"
	case "oct":
		return "HS* (symmetric)"
	}
	return k.Kty + " (unknown key type)"
}

// probeIssuer fetches the issuer's discovery document and key set within
// the probe timeout. Nothing fetched is a secret; key material is not
// kept.
func (c *ServerChecks) probeIssuer(ctx context.Context, issuer string) *issuerProbe {
	p := &issuerProbe{issuer: issuer, discovery: "not tried", jwks: "not tried"}
	u, err := url.Parse(issuer)
	if err != nil {
		p.problems = append(p.problems, "not a URL")
		return p
	}
	p.https = u.Scheme == "https"
	if !p.https && !loopbackHost(u.Hostname()) {
		p.problems = append(p.problems, "uses http:// to a non-loopback host: its keys can be replaced in transit, and with them any token forged")
	}
	pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
	defer cancel()
	md, err := authn.FetchProviderMetadata(pctx, c.Client, issuer)
	switch {
	case ctx.Err() != nil:
		p.cannotRun = true
		p.discovery = "not checked"
		p.problems = append(p.problems, "the report was cancelled before the probe finished")
		return p
	case errors.Is(err, authn.ErrIssuerMismatch):
		p.discovery = "answers, for another issuer"
		p.problems = append(p.problems, "tokens from it are refused: "+err.Error())
		return p
	case err != nil:
		p.discovery = "does not answer"
		p.problems = append(p.problems, fmt.Sprintf("discovery document: %v", probeError(pctx, err, c)))
		return p
	}
	p.discovery = "answers"
	if md.JWKSURI == "" {
		p.jwks = "not advertised"
		p.problems = append(p.problems, "its discovery document has no jwks_uri: tokens from it cannot be verified")
		return p
	}
	body, err := authn.FetchIdP(pctx, c.Client, md.JWKSURI)
	if err != nil {
		if ctx.Err() != nil {
			p.cannotRun = true
			p.jwks = "not checked"
			p.problems = append(p.problems, "the report was cancelled before the probe finished")
			return p
		}
		p.jwks = "does not answer"
		p.problems = append(p.problems, fmt.Sprintf("JWKS %s: %v", md.JWKSURI, probeError(pctx, err, c)))
		return p
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		p.jwks = "answers with an invalid document"
		p.problems = append(p.problems, "JWKS is not a JSON key set")
		return p
	}
	p.jwks = fmt.Sprintf("answers (%d key%s)", len(set.Keys), map[bool]string{true: "s"}[len(set.Keys) != 1])
	usable := 0
	seen := map[string]bool{}
	for _, k := range set.Keys {
		if k.Use == "enc" {
			continue
		}
		alg := keyAlg(k)
		if !seen[alg] {
			seen[alg] = true
			p.algs = append(p.algs, alg)
		}
		if acceptedAlgs[alg] || k.Alg == "" && k.Kty == "RSA" {
			usable++
		}
		if k.Kty == "oct" {
			p.problems = append(p.problems, "publishes a symmetric (oct) key: a shared secret must never be in a JWKS")
		}
	}
	sort.Strings(p.algs)
	if usable == 0 {
		p.problems = append(p.problems, "no signing key with an accepted algorithm (RS256 RS384 RS512 ES256 ES384 PS256 EdDSA): tokens from it are refused")
	}
	return p
}

// probeError names a timeout as such: the probe's deadline or the HTTP
// client's own timeout, whichever fired first (both are ProbeTimeout).
func probeError(pctx context.Context, err error, c *ServerChecks) error {
	var te interface{ Timeout() bool }
	if errors.Is(pctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		return fmt.Errorf("no answer within %s", c.ProbeTimeout)
	}
	return err
}

func (c *ServerChecks) checkAdditionalIssuers(ctx context.Context) Finding {
	f := Finding{ID: "authn.additional_issuers", Section: SectionAuthentication, Title: "Review additional issuers"}
	issuers := c.Config.Auth.OIDC.AdditionalIssuers
	if len(issuers) == 0 {
		f.Severity, f.Seen = Pass, "auth.oidc.additional_issuers is empty: only auth.oidc.issuer issues accepted tokens"
		return f
	}
	probes := make([]*issuerProbe, len(issuers))
	var wg sync.WaitGroup
	for i, iss := range issuers {
		wg.Go(func() { probes[i] = c.probeIssuer(ctx, iss) })
	}
	wg.Wait()
	worst := Info // every extra issuer is trust to review
	var bad []string
	for _, p := range probes {
		f.Details = append(f.Details, p.line())
		if s := p.severity(); s.Rank() > worst.Rank() {
			worst = s
		}
		if p.severity() != Pass {
			bad = append(bad, p.issuer)
		}
	}
	f.Severity = worst
	f.Seen = fmt.Sprintf("%d additional issuer(s) can issue tokens nmp accepts", len(issuers))
	if len(bad) > 0 {
		f.Seen += fmt.Sprintf("; %d of them need attention: %s", len(bad), strings.Join(bad, ", "))
		f.Fix = "remove the entries you no longer use from auth.oidc.additional_issuers; use https:// issuers that answer"
	} else {
		f.Seen += "; each answers with usable keys: verify you trust every one"
		f.Fix = "keep auth.oidc.additional_issuers to issuers you trust"
	}
	if !c.Config.Auth.OIDC.Enabled {
		f.Seen += " (OIDC is disabled, so they are not used now)"
	}
	return f
}
