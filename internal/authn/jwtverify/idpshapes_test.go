package jwtverify

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/config"
)

// The token shapes real identity providers issue (header and claims as
// they appear on the wire, values made up), signed by the test IdP's
// key published under the IdP's kid. Every access token must be
// accepted with the mapping docs/identity-providers.md recommends, and
// every ID token refused: with that mapping, and (when the ID token
// carries a marker) also when auth.oidc.audience is unset and the
// expected audience is the client_id the ID token is issued to.

// idpShape is one token an IdP issues.
type idpShape struct {
	name   string
	header map[string]any // typ and other JOSE members; alg and kid are set by the signer
	claims map[string]any
	idTok  bool // an ID token: must be refused
	// marked: the ID token carries a marker (typ, nonce, at_hash, ...),
	// so it is refused as id_token_not_accepted even when its aud is
	// the expected audience.
	marked bool
	// want* are the mapped principal of an access token.
	wantID, wantEmail string
	wantGroups        []string
	wantScopes        []string
}

// idpCase is an IdP: its recommended configuration and its tokens.
type idpCase struct {
	name   string
	kid    string
	issuer string
	// configure applies the docs/identity-providers.md mapping.
	configure func(o *config.OIDCConfig)
	// clientID is the CLI's client id, the aud of its ID tokens.
	clientID string
	shapes   []idpShape
}

func ptr[T any](v T) *T { return &v }

// ts is a NumericDate offset from the fake clock's start.
func ts(d time.Duration) int64 { return t0.Add(d).Unix() }

func idpCases() []idpCase {
	const (
		kcIss   = "https://keycloak.example.com/realms/nmp"
		oktaIss = "https://example.okta.com/oauth2/default"
		tenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		cliApp  = "0b7c7a35-2a8f-4d5c-9a3e-5f1c2d9e8a11" // the CLI's app registration
		apiApp  = "6e4a9c1d-7b3f-4e2a-8c5d-1f9e0a2b3c4d" // the API's app registration
		a0Iss   = "https://example.eu.auth0.com/"
		a0API   = "https://nmp.example.com/api"
		hyIss   = "https://hydra.example.com/"
		devIss  = "http://127.0.0.1:9400"
	)
	entraV1Iss := "https://sts.windows.net/" + tenant + "/"
	entraV2Iss := "https://login.microsoftonline.com/" + tenant + "/v2.0"
	return []idpCase{
		{
			name: "Keycloak", kid: "q3mSjR0bKXLxZ5uMDVJfc5S4pOFgZ3gxb3gA9fFbVqE", issuer: kcIss, clientID: "nmp-cli",
			configure: func(o *config.OIDCConfig) {
				o.Audience = ptr("nmp-api")
				o.GroupsClaim = "groups"
			},
			shapes: []idpShape{
				{name: "access token (user, device flow)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"exp": ts(5 * time.Minute), "iat": ts(0), "auth_time": ts(-time.Minute),
					"jti": "onrtdg:2c1e6f0e-5b9a-4b1e-9d8e-0f3c2a1b4d5e", "iss": kcIss,
					"aud": []string{"nmp-api", "account"}, "sub": "f3b8a1c2-4d5e-4f60-8a7b-9c0d1e2f3a4b",
					"typ": "Bearer", "azp": "nmp-cli", "sid": "8e1d2c3b-4a59-4687-9a0b-c1d2e3f4a5b6", "acr": "1",
					"allowed-origins":    []string{"/*"},
					"realm_access":       map[string]any{"roles": []string{"offline_access", "uma_authorization", "default-roles-nmp"}},
					"resource_access":    map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
					"scope":              "openid email profile platform:read platform:write",
					"email_verified":     true,
					"name":               "Alice Example",
					"groups":             []string{"eng", "ops"},
					"preferred_username": "alice",
					"given_name":         "Alice", "family_name": "Example", "email": "alice@example.com",
				}, wantID: "f3b8a1c2-4d5e-4f60-8a7b-9c0d1e2f3a4b", wantEmail: "alice@example.com",
					wantGroups: []string{"eng", "ops"}, wantScopes: []string{"openid", "email", "profile", "platform:read", "platform:write"}},
				{name: "access token (client credentials)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"exp": ts(5 * time.Minute), "iat": ts(0), "jti": "trrtcc:0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
					"iss": kcIss, "aud": "nmp-api", "sub": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "typ": "Bearer",
					"azp": "nmp-ci", "acr": "1", "scope": "profile email platform:read", "clientHost": "10.0.0.7",
					"preferred_username": "service-account-nmp-ci", "clientAddress": "10.0.0.7", "client_id": "nmp-ci",
					"email_verified": false,
				}, wantID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", wantScopes: []string{"profile", "email", "platform:read"}},
				{name: "ID token", header: map[string]any{"typ": "JWT"}, idTok: true, marked: true, claims: map[string]any{
					"exp": ts(5 * time.Minute), "iat": ts(0), "auth_time": ts(-time.Minute),
					"jti": "2f6a1b3c-9d8e-4f70-a1b2-c3d4e5f6a7b8", "iss": kcIss, "aud": "nmp-cli",
					"sub": "f3b8a1c2-4d5e-4f60-8a7b-9c0d1e2f3a4b", "typ": "ID", "azp": "nmp-cli",
					"sid": "8e1d2c3b-4a59-4687-9a0b-c1d2e3f4a5b6", "at_hash": "x6pXTlR3DGvTh2p0X9zM4w", "acr": "1",
					"email_verified": true, "name": "Alice Example", "preferred_username": "alice",
					"given_name": "Alice", "family_name": "Example", "email": "alice@example.com",
				}},
			},
		},
		{
			name: "Okta", kid: "Z4tL0hWjqYbXrFq3cVd7NnKp2sUe9gHw1mBoA5iRxT8", issuer: oktaIss, clientID: "0oa1b2c3d4CLIentID697",
			configure: func(o *config.OIDCConfig) { o.Audience = ptr("api://nmp") },
			shapes: []idpShape{
				{name: "access token (user)", header: map[string]any{}, claims: map[string]any{
					"ver": 1, "jti": "AT.u0dzGxJqQ0yWcA3cE5p9d4kZ8qUxM-7wP2f1bG6hLkI", "iss": oktaIss, "aud": "api://nmp",
					"iat": ts(0), "exp": ts(time.Hour), "cid": "0oa1b2c3d4CLIentID697", "uid": "00u1a2b3c4ALICE697",
					"scp": []string{"openid", "email", "offline_access", "platform:read"}, "auth_time": ts(-time.Minute),
					"sub": "alice@example.com", "groups": []string{"eng", "Everyone"}, "email": "alice@example.com",
				}, wantID: "alice@example.com", wantEmail: "alice@example.com", wantGroups: []string{"eng", "Everyone"},
					wantScopes: []string{"openid", "email", "offline_access", "platform:read"}},
				{name: "access token (client credentials)", header: map[string]any{}, claims: map[string]any{
					"ver": 1, "jti": "AT.3xk9qL0mN2pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4", "iss": oktaIss, "aud": "api://nmp",
					"iat": ts(0), "exp": ts(time.Hour), "cid": "0oa9z8y7x6CIclient697", "scp": []string{"platform:read"},
					"sub": "0oa9z8y7x6CIclient697",
				}, wantID: "0oa9z8y7x6CIclient697", wantScopes: []string{"platform:read"}},
				{name: "ID token", header: map[string]any{}, idTok: true, marked: true, claims: map[string]any{
					"sub": "00u1a2b3c4ALICE697", "name": "Alice Example", "email": "alice@example.com", "ver": 1,
					"iss": oktaIss, "aud": "0oa1b2c3d4CLIentID697", "iat": ts(0), "exp": ts(time.Hour),
					"jti": "ID.Wq3vB7nM1kP9sX2cZ5yT8uR4eA6dF0gH3jL7mN1qS5w", "amr": []string{"pwd"},
					"idp": "00o1a2b3c4IDP697", "preferred_username": "alice@example.com", "auth_time": ts(-time.Minute),
					"at_hash": "pRq1s2T3u4V5w6X7y8Z9aA",
				}},
			},
		},
		{
			name: "Entra ID v1 tokens", kid: "CNv0OI3RwqlHFEVnaoMAshCH2XE", issuer: entraV2Iss, clientID: cliApp,
			configure: func(o *config.OIDCConfig) {
				// v1 access tokens (the API's accessTokenAcceptedVersion
				// null or 1): iss sts.windows.net, aud the API's
				// Application ID URI.
				o.AdditionalIssuers = []string{entraV1Iss}
				o.Audience = ptr("api://" + apiApp)
				o.SubjectClaim, o.EmailClaim = "oid", "upn"
				o.ScopePrefix = ptr("api://" + apiApp + "/")
			},
			shapes: []idpShape{
				{name: "v1 access token", header: map[string]any{"typ": "JWT", "x5t": "CNv0OI3RwqlHFEVnaoMAshCH2XE"}, claims: map[string]any{
					"aud": "api://" + apiApp, "iss": entraV1Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(79 * time.Minute),
					"acr": "1", "aio": "AVQAq/8TAAAA", "amr": []string{"pwd", "mfa"}, "appid": cliApp, "appidacr": "0",
					"family_name": "Example", "given_name": "Alice", "ipaddr": "203.0.113.7", "name": "Alice Example",
					"oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "rh": "0.AXEA", "scp": "platform:read platform:write",
					"sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA", "tid": tenant,
					"unique_name": "alice@contoso.com", "upn": "alice@contoso.com", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "1.0",
					"groups": []string{"eng"},
				}, wantID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", wantEmail: "alice@contoso.com", wantGroups: []string{"eng"},
					wantScopes: []string{"platform:read", "platform:write"}},
				{name: "v1 ID token", header: map[string]any{"typ": "JWT"}, idTok: true, claims: map[string]any{
					"aud": cliApp, "iss": entraV1Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(time.Hour),
					"amr": []string{"pwd"}, "family_name": "Example", "given_name": "Alice", "ipaddr": "203.0.113.7",
					"name": "Alice Example", "oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "rh": "0.AXEA",
					"sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA", "tid": tenant,
					"unique_name": "alice@contoso.com", "upn": "alice@contoso.com", "ver": "1.0",
				}},
			},
		},
		{
			name: "Entra ID v2 tokens", kid: "CNv0OI3RwqlHFEVnaoMAshCH2XE", issuer: entraV2Iss, clientID: cliApp,
			configure: func(o *config.OIDCConfig) {
				// v2 access tokens (accessTokenAcceptedVersion 2): aud
				// is the API application's client id, which differs from
				// the CLI's with a separate API app registration.
				o.Audience = ptr(apiApp)
				o.SubjectClaim, o.EmailClaim = "oid", "upn"
				o.ScopePrefix = ptr("api://" + apiApp + "/")
			},
			shapes: []idpShape{
				{name: "v2 access token", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"aud": apiApp, "iss": entraV2Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(81 * time.Minute),
					"aio": "AWQAm/8TAAAA", "azp": cliApp, "azpacr": "0", "name": "Alice Example",
					"oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "preferred_username": "alice@contoso.com", "rh": "0.AXEA",
					"scp": "platform:read", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": tenant,
					"upn": "alice@contoso.com", "uti": "3ZqP9ZxR0Ue2bF1c5nLkAA", "ver": "2.0",
				}, wantID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", wantEmail: "alice@contoso.com", wantScopes: []string{"platform:read"}},
				{name: "v2 access token (client credentials, app roles)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"aud": apiApp, "iss": entraV2Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(time.Hour),
					"aio": "k2BgYPi", "azp": "4f5e6d7c-8b9a-4c0d-9e1f-2a3b4c5d6e7f", "azpacr": "1",
					"idtyp": "app", "oid": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "rh": "0.AXEA",
					"roles": []string{"platform.read"}, "sub": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "tid": tenant,
					"uti": "Zx9YwVu8Ts7R", "ver": "2.0",
				}, wantID: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"},
				{name: "v2 ID token", header: map[string]any{"typ": "JWT"}, idTok: true, claims: map[string]any{
					"aud": cliApp, "iss": entraV2Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(time.Hour),
					"aio": "AUQAu/8TAAAA", "name": "Alice Example", "oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
					"preferred_username": "alice@contoso.com", "rh": "0.AXEA",
					"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": tenant, "uti": "p1AAqdQ7xE2", "ver": "2.0",
				}},
				{name: "v2 ID token with nonce", header: map[string]any{"typ": "JWT"}, idTok: true, marked: true, claims: map[string]any{
					"aud": cliApp, "iss": entraV2Iss, "iat": ts(0), "nbf": ts(0), "exp": ts(time.Hour),
					"name": "Alice Example", "nonce": "n-0S6_WzA2Mj", "oid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
					"preferred_username": "alice@contoso.com", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
					"tid": tenant, "ver": "2.0",
				}},
			},
		},
		{
			name: "Auth0", kid: "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg", issuer: a0Iss, clientID: "Xq2w3E4r5T6y7U8i9O0pA1sD2fG3hJ4k",
			configure: func(o *config.OIDCConfig) {
				o.Audience = ptr(a0API)
				o.EmailClaim = "https://nmp.example.com/email"
				o.GroupsClaim = "https://nmp.example.com/groups"
			},
			shapes: []idpShape{
				{name: "access token (default profile)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"https://nmp.example.com/email":  "alice@example.com",
					"https://nmp.example.com/groups": []string{"eng"},
					"iss":                            a0Iss, "sub": "auth0|64f1a2b3c4d5e6f7a8b9c0d1",
					"aud": []string{a0API, "https://example.eu.auth0.com/userinfo"}, "iat": ts(0), "exp": ts(24 * time.Hour),
					"scope": "openid profile email platform:read", "azp": "Xq2w3E4r5T6y7U8i9O0pA1sD2fG3hJ4k",
					"permissions": []string{"platform:read"},
				}, wantID: "auth0|64f1a2b3c4d5e6f7a8b9c0d1", wantEmail: "alice@example.com", wantGroups: []string{"eng"},
					wantScopes: []string{"openid", "profile", "email", "platform:read"}},
				{name: "access token (RFC 9068 profile)", header: map[string]any{"typ": "at+jwt"}, claims: map[string]any{
					"https://nmp.example.com/email":  "alice@example.com",
					"https://nmp.example.com/groups": []string{"eng"},
					"iss":                            a0Iss, "sub": "auth0|64f1a2b3c4d5e6f7a8b9c0d1", "aud": a0API,
					"iat": ts(0), "exp": ts(24 * time.Hour), "scope": "openid profile email platform:read",
					"jti": "b7X1kQ2mP9", "client_id": "Xq2w3E4r5T6y7U8i9O0pA1sD2fG3hJ4k",
				}, wantID: "auth0|64f1a2b3c4d5e6f7a8b9c0d1", wantEmail: "alice@example.com", wantGroups: []string{"eng"},
					wantScopes: []string{"openid", "profile", "email", "platform:read"}},
				{name: "access token (client credentials)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"iss": a0Iss, "sub": "Zy9X8w7V6u5T4s3R2q1P0oN9m8L7k6J5@clients", "aud": a0API,
					"iat": ts(0), "exp": ts(24 * time.Hour), "scope": "platform:read", "gty": "client-credentials",
					"azp": "Zy9X8w7V6u5T4s3R2q1P0oN9m8L7k6J5", "permissions": []string{"platform:read"},
				}, wantID: "Zy9X8w7V6u5T4s3R2q1P0oN9m8L7k6J5@clients", wantScopes: []string{"platform:read"}},
				{name: "ID token", header: map[string]any{"typ": "JWT"}, idTok: true, claims: map[string]any{
					"nickname": "alice", "name": "alice@example.com", "picture": "https://s.gravatar.com/avatar/x.png",
					"updated_at": "2030-01-02T03:00:00.000Z", "email": "alice@example.com", "email_verified": true,
					"iss": a0Iss, "aud": "Xq2w3E4r5T6y7U8i9O0pA1sD2fG3hJ4k", "iat": ts(0), "exp": ts(10 * time.Hour),
					"sub": "auth0|64f1a2b3c4d5e6f7a8b9c0d1", "sid": "Ui2Xv3cW4b5N6m7Q8",
				}},
				{name: "ID token with nonce", header: map[string]any{"typ": "JWT"}, idTok: true, marked: true, claims: map[string]any{
					"email": "alice@example.com", "iss": a0Iss, "aud": "Xq2w3E4r5T6y7U8i9O0pA1sD2fG3hJ4k",
					"iat": ts(0), "exp": ts(10 * time.Hour), "sub": "auth0|64f1a2b3c4d5e6f7a8b9c0d1",
					"sid": "Ui2Xv3cW4b5N6m7Q8", "nonce": "bXlOb25jZQ",
				}},
			},
		},
		{
			name: "Ory Hydra", kid: "0f4f0e1e-3c1b-4bde-8f8a-5f6f1b7c2d3e", issuer: hyIss, clientID: "nmp-cli",
			configure: func(o *config.OIDCConfig) {
				o.Audience = ptr("https://nmp.example.com/api")
				o.EmailClaim, o.GroupsClaim = "ext.email", "ext.groups"
			},
			shapes: []idpShape{
				{name: "access token (user)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"aud": []string{"https://nmp.example.com/api"}, "client_id": "nmp-cli", "exp": ts(time.Hour),
					"ext": map[string]any{"email": "alice@example.com", "groups": []string{"eng"}},
					"iat": ts(0), "iss": hyIss, "jti": "7c1e0f9a-2b3d-4e5f-8a9b-0c1d2e3f4a5b", "nbf": ts(0),
					"scp": []string{"openid", "offline_access", "platform:read"}, "sub": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
				}, wantID: "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e", wantEmail: "alice@example.com", wantGroups: []string{"eng"},
					wantScopes: []string{"openid", "offline_access", "platform:read"}},
				{name: "access token (client credentials)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"aud": []string{"https://nmp.example.com/api"}, "client_id": "nmp-ci", "exp": ts(time.Hour),
					"ext": map[string]any{}, "iat": ts(0), "iss": hyIss, "jti": "1a2b3c4d", "nbf": ts(0),
					"scp": []string{"platform:read"}, "sub": "nmp-ci",
				}, wantID: "nmp-ci", wantScopes: []string{"platform:read"}},
				{name: "ID token", header: map[string]any{"typ": "JWT"}, idTok: true, marked: true, claims: map[string]any{
					"acr": "0", "amr": []string{"pwd"}, "at_hash": "2Yy9aWn4Q0bM5tP8rS1uVw", "aud": []string{"nmp-cli"},
					"auth_time": ts(-time.Minute), "email": "alice@example.com", "exp": ts(time.Hour), "iat": ts(0),
					"iss": hyIss, "jti": "d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f7a", "rat": ts(-2 * time.Minute),
					"sid": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "sub": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
				}},
			},
		},
		{
			// nmp dev-idp (zitadel/oidc) with dev_idp.audience "nmp":
			// every token, ID tokens included, has aud ["nmp"] (null:
			// the requesting client_id), so only the ID token's at_hash
			// (and c_hash after an authorization code) tells it apart.
			name: "nmp dev-idp", kid: "Yl2bG9u0dJqfHk3N7sVxW1cQ8rTzA4eM6pLiO5uKjC0", issuer: devIss, clientID: "nmp-cli",
			configure: func(o *config.OIDCConfig) { o.Audience = ptr("nmp") },
			shapes: []idpShape{
				{name: "access token (user)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"iss": devIss, "sub": "alice", "aud": []string{"nmp"}, "jti": "V1_8f0e2c3d4b5a6978",
					"exp": ts(time.Hour), "iat": ts(0), "nbf": ts(0), "client_id": "nmp-cli",
					"email": "alice@example.com", "groups": []string{"eng"}, "scope": "openid profile email offline_access",
				}, wantID: "alice", wantEmail: "alice@example.com", wantGroups: []string{"eng"},
					wantScopes: []string{"openid", "profile", "email", "offline_access"}},
				{name: "access token (client credentials)", header: map[string]any{"typ": "JWT"}, claims: map[string]any{
					"iss": devIss, "sub": "ci-bot", "aud": []string{"nmp"}, "jti": "V1_0a1b2c3d",
					"exp": ts(time.Hour), "iat": ts(0), "nbf": ts(0), "client_id": "nmp-ci", "groups": []string{},
					"scope": "platform:read",
				}, wantID: "ci-bot", wantScopes: []string{"platform:read"}},
				{name: "ID token", header: map[string]any{"typ": "JWT"}, idTok: true, marked: true, claims: map[string]any{
					"iss": devIss, "sub": "alice", "aud": []string{"nmp"}, "exp": ts(time.Hour), "iat": ts(0),
					"nbf": ts(0), "auth_time": ts(-time.Minute), "amr": []string{"pwd"}, "azp": "nmp-cli",
					"client_id": "nmp-cli", "at_hash": "R2l0aHViLmNvbS9ubXA", "email": "alice@example.com",
					"groups": []string{"eng"},
				}},
			},
		},
	}
}

// signShape signs claims with k under kid, with exactly the header
// members given (no typ unless listed).
func signShape(t testing.TB, k *testKey, kid string, hdr map[string]any, c map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for name, v := range hdr {
		opts.WithHeader(jose.HeaderKey(name), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIdPTokenShapes: every access token of every IdP is accepted and
// mapped; every ID token is refused, with the recommended configuration
// and, when it carries a marker, under the client_id fallback too.
func TestIdPTokenShapes(t *testing.T) {
	for _, ic := range idpCases() {
		t.Run(ic.name, func(t *testing.T) {
			k := keyRSA().with(ic.kid, "sig")
			i := newIDP(t, k)
			base := authConfig(ic.issuer)
			base.OIDC.ClientID = ic.clientID
			base.OIDC.JWKSURI = ptr(i.URL() + "/jwks")
			recommended := base
			ic.configure(&recommended.OIDC)
			fallback := base // audience unset: the expected aud is the CLI's client_id
			hr := newHarness(t, recommended)
			hf := newHarness(t, fallback)
			for _, s := range ic.shapes {
				t.Run(s.name, func(t *testing.T) {
					tok := signShape(t, k, ic.kid, s.header, s.claims)
					p, err := hr.v.Validate(context.Background(), tok)
					if s.idTok {
						if err == nil {
							t.Fatalf("ID token accepted as %+v", p)
						}
						if !s.marked {
							if got := reasonOf(t, err); got != ReasonAudienceMismatch {
								t.Fatalf("unmarked ID token: reason %q, want %q (only its audience tells it apart)", got, ReasonAudienceMismatch)
							}
							return
						}
						if got := reasonOf(t, err); got != ReasonIDToken {
							t.Fatalf("reason %q (%v), want %q", got, err, ReasonIDToken)
						}
						wantReason(t, hf.v, tok, ReasonIDToken)
						return
					}
					if err != nil {
						t.Fatalf("access token refused: %v", err)
					}
					if p.ID != s.wantID || p.Email != s.wantEmail || !slices.Equal(p.Groups, s.wantGroups) ||
						!slices.Equal(p.Scopes, s.wantScopes) {
						t.Fatalf("principal %+v, want id %q email %q groups %q scopes %q", p, s.wantID, s.wantEmail, s.wantGroups, s.wantScopes)
					}
				})
			}
		})
	}
}
