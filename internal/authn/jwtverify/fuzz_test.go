package jwtverify

import (
	"context"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/ident"
)

var knownReasons = map[string]bool{
	ReasonMalformed: true, ReasonTooLarge: true, ReasonAlgNotAllowed: true, ReasonUnsignedNotAllowed: true,
	ReasonCritHeader: true, ReasonUnknownIssuer: true, ReasonBadSignature: true, ReasonUnknownKid: true,
	ReasonExpired: true, ReasonNotYetValid: true, ReasonIssuedInFuture: true, ReasonMissingClaim: true,
	ReasonAudienceMismatch: true, ReasonInvalidSubject: true, ReasonReservedSubject: true,
	ReasonTooManyGroups: true, ReasonJWKSFetchFailed: true, ReasonIDToken: true, ReasonLifetimeExceeded: true,
}

// FuzzValidate: arbitrary strings never panic and never validate unless
// signed by a configured key. The IdP publishes rsa-1 and ed-1; the seeds
// are well-formed tokens signed by keys the IdP does not publish (also
// under its kids), unsigned, HMAC and broken ones. A second verifier with
// unsigned tokens enabled may accept only `alg: none` tokens, and only
// with a valid, unreserved subject, at most 100 groups and no
// permission-shaped scopes.
func FuzzValidate(f *testing.F) {
	i := newIDP(f, keyRSA(), keyEd())
	iss := i.URL()
	c := claims(iss)
	for _, tok := range []string{
		sign(f, &testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaOther()}, c, nil),
		sign(f, &testKey{alg: jose.RS256, priv: rsaOther()}, c, nil),
		sign(f, &testKey{kid: "ed-1", alg: jose.EdDSA, priv: edPrivOther()}, c, nil),
		sign(f, &testKey{kid: "ec-1", alg: jose.ES256, priv: ecPriv()}, c, nil),
		signWith(f, jose.HS256, rsaPublicPEM(f), "rsa-1", c, nil),
		unsigned(c),
		unsigned(with(c, "nonce", "n", "typ", "ID")),
		b64j(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + b64j(with(c, "exp", 1e300)) + ".",
		signShape(f, &testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaOther()}, "rsa-1", map[string]any{"typ": "id+jwt"}, c),
		unsigned(with(c, "sub", "service:x", "groups", strings.Join(kids("g", 101), ","))),
		b64j(map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"x"}}) + "." + b64j(c) + ".AAAA",
		"", ".", "..", "a.b.c", "e30.e30.", "!!.@@.##",
	} {
		f.Add(tok)
	}
	clock := newClock()
	v, err := New(authConfig(iss), WithClock(clock.Now), WithLogger(discard()))
	if err != nil {
		f.Fatal(err)
	}
	cfg := authConfig(iss)
	cfg.AllowUnsignedJWT = true
	vu, err := New(cfg, WithClock(clock.Now), WithLogger(discard()))
	if err != nil {
		f.Fatal(err)
	}
	unconfigured := config.Default().Auth
	unconfigured.AllowUnsignedJWT = true
	vn, err := New(unconfigured, WithClock(clock.Now), WithLogger(discard()))
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		if p, err := v.Validate(ctx, token); err == nil {
			t.Fatalf("forged token validated: %+v", p)
		} else {
			checkRefusal(t, err)
		}
		for _, ver := range []*Verifier{vu, vn} {
			p, err := ver.Validate(ctx, token)
			if err != nil {
				checkRefusal(t, err)
				continue
			}
			hdr, it := parseHeader(strings.SplitN(token, ".", 2)[0])
			if it != nil || hdr.alg != algNone {
				t.Fatalf("signed token validated without a configured key: %+v", p)
			}
			checkPrincipal(t, p)
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var it *authn.InvalidToken
	if !errors.As(err, &it) || !knownReasons[it.Reason] {
		t.Fatalf("unexpected error %T %v", err, err)
	}
}

func checkPrincipal(t *testing.T, p *authn.Principal) {
	t.Helper()
	if !ident.ValidPrincipalID(p.ID) || ident.Reserved(p.ID) {
		t.Fatalf("principal id %q accepted", p.ID)
	}
	if p.Email != "" && !ident.ValidEmail(p.Email) {
		t.Fatalf("email %q accepted", p.Email)
	}
	if len(p.Groups) > maxGroups {
		t.Fatalf("%d groups accepted", len(p.Groups))
	}
	for _, g := range p.Groups {
		if !ident.ValidPrincipalID(g) || ident.Reserved(g) {
			t.Fatalf("group %q accepted", g)
		}
	}
	for _, s := range p.Scopes {
		if s == "" || ident.PermissionShaped(s) || strings.ContainsAny(s, " \t\r\n") {
			t.Fatalf("scope %q accepted", s)
		}
	}
}
