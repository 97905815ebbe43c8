package authn

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// fakeTokens accepts "good" and refuses anything else as expired.
type fakeTokens struct{}

func (fakeTokens) Validate(_ context.Context, tok string) (*Principal, error) {
	if tok == "good" {
		return &Principal{ID: "u-token", Scopes: []string{"platform:read"}}, nil
	}
	return nil, &InvalidToken{Reason: "expired", Detail: "token expired"}
}

type otherTokenError struct{}

func (otherTokenError) Validate(context.Context, string) (*Principal, error) {
	return nil, errors.New("validator broke")
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var (
	proxy    = netip.MustParseAddr("10.0.5.7")
	stranger = netip.MustParseAddr("192.0.2.1")
)

func TestIdentify(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")}
	disabled := IdentifierConfig{}
	dev := IdentifierConfig{Enabled: true, TrustedProxies: trusted}
	devTokens := IdentifierConfig{Enabled: true, TrustedProxies: trusted, Tokens: fakeTokens{}}
	prod := IdentifierConfig{Enabled: true, Production: true, TrustedProxies: trusted, Tokens: fakeTokens{}}
	alice := &Principal{ID: "alice"}
	tests := []struct {
		name   string
		cfg    IdentifierConfig
		h      http.Header
		peer   netip.Addr
		want   Identity
		code   string // rejection code, "" for success
		detail string // rejection's security-log detail
	}{
		{"disabled: anonymous", disabled, header(), stranger, Identity{}, "", ""},
		{"disabled: headers are the principal", disabled, header(HeaderPrincipalID, "alice"), stranger, Identity{Principal: alice}, "", ""},
		{"disabled: headers still validated", disabled, header(HeaderPrincipalID, "a b"), stranger, Identity{}, CodeInvalidHeader, ""},
		{"disabled: bearer ignored", disabled, header("Authorization", "Bearer good"), stranger, Identity{}, "", ""},
		{"disabled: authorized header means nothing", disabled, header(HeaderPrincipalID, "alice", HeaderAuthorized, "true"), proxy, Identity{Principal: alice}, "", ""},

		{"dev: headers from anyone", dev, header(HeaderPrincipalID, "alice"), stranger, Identity{Principal: alice}, "", ""},
		{"dev: authorized only from a trusted proxy", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "true"), stranger, Identity{Principal: alice}, "", ""},
		{"dev: authorized from a trusted proxy", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "TRUE"), proxy, Identity{Principal: alice, Authorized: true}, "", ""},
		{"dev: authorized must be true", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "yes"), proxy, Identity{Principal: alice}, "", ""},
		{"dev: X-Forwarded-For is not the peer", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "true", "X-Forwarded-For", "10.0.5.7"), stranger, Identity{Principal: alice}, "", ""},
		{"dev: unknown peer is never trusted", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "true"), netip.Addr{}, Identity{Principal: alice}, "", ""},
		{"dev: IPv4-mapped IPv6 peer", dev, header(HeaderPrincipalID, "alice", HeaderAuthorized, "true"), netip.MustParseAddr("::ffff:10.0.5.7"), Identity{Principal: alice, Authorized: true}, "", ""},
		{"dev: headers win over a bearer token", devTokens, header(HeaderPrincipalID, "alice", "Authorization", "Bearer bad"), stranger, Identity{Principal: alice}, "", ""},
		{"dev: headers without a principal id are ignored", devTokens, header(HeaderPrincipalEmail, "a@b.c", "Authorization", "Bearer good"), stranger, Identity{Principal: &Principal{ID: "u-token", Scopes: []string{"platform:read"}}}, "", ""},
		{"dev: permission-shaped scope", dev, header(HeaderPrincipalID, "alice", HeaderScopes, "iam.list"), stranger, Identity{}, CodeInvalidScope, ""},
		{"dev: no validator", dev, header("Authorization", "Bearer good"), stranger, Identity{}, CodeBearerNotConfigured, "bearer_not_configured"},
		{"dev: anonymous", dev, header(), stranger, Identity{}, "", ""},

		{"prod: headers from a stranger", prod, header(HeaderPrincipalID, "alice"), stranger, Identity{}, CodeUntrustedIdentityHeaders, ""},
		{"prod: any identity header counts", prod, header(HeaderAuthorized, "true"), stranger, Identity{}, CodeUntrustedIdentityHeaders, ""},
		{"prod: headers from a proxy", prod, header(HeaderPrincipalID, "alice"), proxy, Identity{Principal: alice}, "", ""},
		{"prod: trust check before validation", prod, header(HeaderPrincipalID, "a b"), stranger, Identity{}, CodeUntrustedIdentityHeaders, ""},
		{"prod: bearer", prod, header("Authorization", "Bearer good"), stranger, Identity{Principal: &Principal{ID: "u-token", Scopes: []string{"platform:read"}}}, "", ""},
		{"prod: bearer scheme is case-insensitive", prod, header("Authorization", "bearer good"), stranger, Identity{Principal: &Principal{ID: "u-token", Scopes: []string{"platform:read"}}}, "", ""},
		{"prod: refused token", prod, header("Authorization", "Bearer bad"), stranger, Identity{}, CodeInvalidToken, "expired"},
		{"prod: other scheme", prod, header("Authorization", "Basic Zm9v"), stranger, Identity{}, CodeInvalidToken, "malformed_authorization_header"},
		{"prod: empty bearer", prod, header("Authorization", "Bearer  "), stranger, Identity{}, CodeInvalidToken, "malformed_authorization_header"},
		{"prod: anonymous", prod, header(), stranger, Identity{}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewIdentifier(tc.cfg).Identify(context.Background(), Credentials{Header: tc.h, Peer: tc.peer})
			if tc.code == "" {
				if err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Code != tc.code || rej.Detail != tc.detail || rej.Message == "" || rej.Reason == "" {
				t.Fatalf("got %+v %#v, want rejection %s (detail %q)", got, err, tc.code, tc.detail)
			}
			if got != (Identity{}) {
				t.Fatalf("identity %+v returned with a rejection", got)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	ctx := context.Background()
	prod := NewIdentifier(IdentifierConfig{Enabled: true, Production: true, Tokens: fakeTokens{},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")}})

	// The gateway checks refuse identity headers from anyone in production.
	if err := prod.RefuseIdentityHeaders(Credentials{Header: header(HeaderPrincipalID, "x"), Peer: proxy}); err == nil {
		t.Fatal("identity headers accepted by a gateway check")
	}
	if err := prod.RefuseIdentityHeaders(Credentials{Header: header("Authorization", "Bearer good")}); err != nil {
		t.Fatal(err)
	}
	dev := NewIdentifier(IdentifierConfig{Enabled: true})
	if err := dev.RefuseIdentityHeaders(Credentials{Header: header(HeaderPrincipalID, "x")}); err != nil {
		t.Fatalf("development mode: %v", err)
	}
	if err := prod.CheckSource(Credentials{Header: header(HeaderScopes, "x"), Peer: stranger}); err == nil {
		t.Fatal("source check passed identity headers from a stranger")
	}

	// A refused token carries the validator's error and reason; the
	// token itself appears nowhere in the rejection.
	const secret = "Bearer eyJsecret.payload.sig"
	_, err := prod.Bearer(ctx, secret)
	var rej *Rejection
	var it *InvalidToken
	if !errors.As(err, &rej) || !errors.As(err, &it) || rej.Detail != "expired" || rej.Reason != "invalid_token" || rej.BadInput() {
		t.Fatalf("%#v", err)
	}
	if strings.Contains(rej.Error()+rej.Message+rej.Detail, "secret") {
		t.Fatalf("the token leaked into %q", rej.Error())
	}
	// A validator error that is not an InvalidToken is still a refusal.
	other := NewIdentifier(IdentifierConfig{Enabled: true, Tokens: otherTokenError{}})
	if _, err := other.Bearer(ctx, "Bearer x"); !errors.As(err, &rej) || rej.Detail != "invalid" || rej.Err == nil {
		t.Fatalf("%#v", err)
	}
	if m := MissingToken(); m.Code != CodeMissingToken || m.Reason != "invalid_token" || m.Detail != "missing_token" {
		t.Fatalf("%+v", m)
	}
	if !prod.BearerConfigured() || dev.BearerConfigured() {
		t.Fatal("BearerConfigured")
	}
}
