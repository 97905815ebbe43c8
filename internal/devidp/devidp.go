// Package devidp is the development OpenID Connect provider behind
// `nmp dev-idp` and `nmp quickstart` (DECISION 13): static users and
// clients from the `dev_idp` configuration, all state in memory. It is for
// local use and tests only.
//
// It is built on zitadel/oidc's op package, which serves discovery, the
// JWKS, /authorize (request validation, PKCE, loopback redirects on any
// port), the authorization code, refresh token and client credentials
// grants, /device_authorization and /userinfo over the in-memory storage of
// this package. This package adds the sign-in form behind /authorize, the
// /device page, and, on /token in front of zitadel, the password grant
// (which zitadel does not offer) and the device_code grant (to apply the
// provider's clock, slow_down and the `aud` rule).
//
// Routes, relative to the issuer URL (its path, if any, is a prefix):
//
//	GET       /.well-known/openid-configuration
//	GET       /jwks
//	GET, POST /authorize            (also the sign-in form)
//	POST      /token
//	POST      /device_authorization
//	GET, POST /device               (user code + sign-in form)
//	GET, POST /userinfo
//
// Every response carries no-store and anti-framing headers; there is no
// CORS. When the issuer is a loopback URL, requests naming any other host
// are refused (421), which defeats DNS rebinding from web pages.
//
// Use it in tests with a real listener:
//
//	srv := httptest.NewUnstartedServer(nil)
//	p, err := devidp.New(cfg.DevIDP, "http://"+srv.Listener.Addr().String(), key)
//	srv.Config.Handler = p.Handler()
//	srv.Start()
//
// or run it with Start, as the commands do.
package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/nmp-project/nmp/internal/config"
)

// Banner is printed and logged whenever the provider starts.
const Banner = "DEVELOPMENT IDENTITY PROVIDER - NOT FOR PRODUCTION USE"

const (
	defaultAccessTTL  = 3600 * time.Second
	defaultRefreshTTL = 86400 * time.Second
	maxBodyBytes      = 64 << 10
)

// Provider is a development OpenID provider.
type Provider struct {
	issuer  string
	prefix  string // issuer URL path without trailing slash
	secure  bool   // https issuer: Secure cookies
	local   bool   // loopback issuer: only loopback Host headers (DNS rebinding)
	kid     string
	pub     *rsa.PublicKey
	now     func() time.Time
	log     *slog.Logger
	csrfKey []byte
	store   *storage
	op      *op.Provider
	handler http.Handler
}

// Option configures a Provider.
type Option func(*options)

type options struct {
	now func() time.Time
	log *slog.Logger
}

// WithClock sets the clock of every lifetime the provider keeps: pending
// sign-ins, authorization codes, device codes and their polling, refresh
// tokens and access-token `exp`. (zitadel stamps `iat`, `nbf` and the ID
// token's times from the wall clock.) Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default: discard). Passwords, secrets, codes
// and tokens are never logged. zitadel itself logs request errors through
// slog.Default.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// New returns a provider for cfg with the given issuer (an absolute http or
// https URL; its path prefixes every route) and RS256 signing key (at least
// 2048 bits). Zero token lifetimes mean the defaults (3600 s, 86400 s).
// Clients and users are taken from cfg as they are: start from
// config.Default().DevIDP for the default public client nmp-cli.
func New(cfg config.DevIDPConfig, issuer string, key *rsa.PrivateKey, opts ...Option) (*Provider, error) {
	o := options{now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("dev IdP signing key: %w", err)
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("dev IdP issuer %q: want an absolute http:// or https:// URL without query or fragment", issuer)
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		issuer:  issuer,
		prefix:  strings.TrimSuffix(u.Path, "/"),
		secure:  u.Scheme == "https",
		local:   isLoopbackHost(u.Host),
		kid:     kid,
		pub:     &key.PublicKey,
		now:     o.now,
		log:     o.log,
		csrfKey: []byte(newID()),
	}

	s := newStorage(o.now, o.log)
	s.accessTTL = seconds(cfg.AccessTokenTTLSeconds, defaultAccessTTL)
	s.refreshTTL = seconds(cfg.RefreshTokenTTLSeconds, defaultRefreshTTL)
	if cfg.Audience != nil {
		s.audience = *cfg.Audience
	}
	s.signing = signingKey{id: kid, key: key}
	s.public = publicKey{id: kid, key: &key.PublicKey}
	loginURL := func(id string) string {
		return strings.TrimSuffix(issuer, "/") + "/authorize?" + url.Values{"auth_request_id": {id}}.Encode()
	}
	scopes := slices.Clone(standardScopes)
	for _, cc := range cfg.Clients {
		c, err := newClient(cc, loginURL, s.accessTTL)
		if err != nil {
			return nil, err
		}
		if s.clients[c.id] != nil {
			return nil, fmt.Errorf("dev_idp: duplicate client_id %q", c.id)
		}
		s.clients[c.id] = c
		for _, sc := range c.scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	for _, uc := range cfg.Users {
		usr, err := newUser(uc)
		if err != nil {
			return nil, err
		}
		if s.users[usr.username] != nil {
			return nil, fmt.Errorf("dev_idp: duplicate username %q", usr.username)
		}
		if s.subjects[usr.subject] != nil {
			return nil, fmt.Errorf("dev_idp: duplicate subject %q", usr.subject)
		}
		s.users[usr.username] = usr
		s.subjects[usr.subject] = usr
	}
	p.store = s

	var cryptoKey [32]byte // encrypts authorization codes (zitadel)
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, err
	}
	opCfg := &op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       scopes,
		SupportedClaims: []string{
			"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "amr", "azp",
			"at_hash", "c_hash", "client_id", "email", "groups", "scope", "preferred_username",
		},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     deviceCodeTTL,
			PollInterval: devicePollInterval,
			UserFormPath: p.prefix + "/device",
			UserCode:     op.UserCodeBase20, // XXXX-XXXX
		},
	}
	opOpts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint("/authorize")),
		op.WithCustomTokenEndpoint(op.NewEndpoint("/token")),
		op.WithCustomKeysEndpoint(op.NewEndpoint("/jwks")),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("/userinfo")),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint("/device_authorization")),
		op.WithCORSOptions(nil), // no CORS: browsers reach only the HTML forms
	}
	if u.Scheme == "http" {
		opOpts = append(opOpts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, s, op.StaticIssuer(issuer), opOpts...)
	if err != nil {
		return nil, fmt.Errorf("dev IdP: %w", err)
	}
	p.handler = p.routes()
	return p, nil
}

func seconds(n int, def time.Duration) time.Duration {
	if n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// Handler serves the routes listed in the package documentation; anything
// else is 404 (405 for a wrong method).
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer is the `iss` of every token.
func (p *Provider) Issuer() string { return p.issuer }

// KeyID is the `kid` of the signing key (its RFC 7638 thumbprint).
func (p *Provider) KeyID() string { return p.kid }

// PublicKey is the public half of the signing key.
func (p *Provider) PublicKey() *rsa.PublicKey { return p.pub }

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.Handle("GET /jwks", p.op)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /device_authorization", p.deviceAuthorization)
	mux.HandleFunc("GET /device", p.deviceForm)
	mux.HandleFunc("POST /device", p.deviceSubmit)
	mux.Handle("GET /userinfo", p.op)
	mux.Handle("POST /userinfo", p.op)
	var h http.Handler = mux
	if p.prefix != "" {
		h = http.StripPrefix(p.prefix, mux)
	}
	return p.middleware(h)
}

// middleware sets defensive headers, bounds request bodies and logs each
// request's method, path and status (never the query or body).
func (p *Provider) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if p.local && !isLoopbackHost(r.Host) {
			// A web page whose name was re-bound to 127.0.0.1 (DNS
			// rebinding) reaches a loopback provider under its own name.
			http.Error(sw, "misdirected request", http.StatusMisdirectedRequest)
		} else {
			next.ServeHTTP(sw, r)
		}
		p.log.Debug("dev IdP request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration", time.Since(start))
	})
}

// isLoopbackHost reports whether hostport (port optional) names
// localhost or a loopback IP.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discovery is zitadel's document trimmed to what is served: no
// introspection, revocation or end-session endpoints, response type code
// only, and the grants of this provider (password included).
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	d := op.CreateDiscoveryConfig(op.ContextWithIssuer(r.Context(), p.issuer), p.op, p.store)
	d.IntrospectionEndpoint, d.RevocationEndpoint, d.EndSessionEndpoint, d.CheckSessionIframe = "", "", "", ""
	d.IntrospectionEndpointAuthMethodsSupported, d.RevocationEndpointAuthMethodsSupported = nil, nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported, d.RevocationEndpointAuthSigningAlgValuesSupported = nil, nil
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{
		oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials,
		oidc.GrantTypeDeviceCode, oidc.GrantType(config.GrantTypePassword),
	}
	writeJSON(w, http.StatusOK, d)
}

// deviceAuthorization is zitadel's /device_authorization.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Pragma", "no-cache")
	p.op.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errorStatus is the RFC 6749 section 5.2 status of an OAuth error.
func errorStatus(e *oidc.Error) int {
	switch e.ErrorType {
	case oidc.InvalidClient:
		return http.StatusUnauthorized
	case oidc.ServerError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// asOAuthError keeps an *oidc.Error and turns anything else into
// server_error without exposing its text.
func asOAuthError(err error) *oidc.Error {
	var e *oidc.Error
	if errors.As(err, &e) {
		return e
	}
	return oidc.ErrServerError().WithDescription("token creation failed")
}
