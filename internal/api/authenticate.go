package api

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/decisionlog"
)

// originalRequest finds the request a gateway asks about: the callout's
// path suffix with its method, else X-Forwarded-Method + X-Forwarded-Uri,
// else X-Original-Method + X-Original-URI.
func originalRequest(r *http.Request) (method, path string, ok bool) {
	const prefix = "/apis/auth/authenticate"
	if rest := strings.TrimPrefix(r.URL.EscapedPath(), prefix); rest != "" {
		return r.Method, rest, true
	}
	for _, h := range [][2]string{{"X-Forwarded-Method", "X-Forwarded-Uri"}, {"X-Original-Method", "X-Original-URI"}} {
		if m, u := r.Header.Get(h[0]), r.Header.Get(h[1]); m != "" && u != "" {
			return m, u, true
		}
	}
	return "", "", false
}

// authenticateCallout serves /apis/auth/authenticate[/<original path>]
// for gateways (nginx auth_request, Caddy forward_auth, Envoy HTTP
// ext_authz), any method (authn.md "Gateway callout"). The decision is
// the gateway check (checkGateway), shared with the Envoy ext_authz gRPC
// server; this handler only reads the HTTP request and writes the answer.
func (s *Server) authenticateCallout(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	req := GatewayRequest{Header: r.Header, Peer: peerAddr(r), Authorize: s.cfg.Auth.AuthenticateAuthorize,
		RequireToken: true, log: factsOf(r)}
	req.log.source = decisionlog.SourceCallout
	if req.Authorize {
		req.Method, req.Path, _ = originalRequest(r)
	}
	res, err := s.checkGateway(r.Context(), req)
	if res.Challenge != "" {
		w.Header().Set("WWW-Authenticate", res.Challenge)
	}
	if err != nil {
		return err
	}
	if res.Bypassed {
		writeJSONBytes(w, http.StatusOK, bypassedBody)
		return nil
	}
	setIdentityHeaders(w.Header(), res.Principal, res.Authorized)
	out := getBuf()
	defer putBuf(out)
	writePooled(w, out, appendCalloutBody(out.AvailableBuffer(), res.Principal))
	return nil
}

// GatewayRequest is the request a gateway asks about.
type GatewayRequest struct {
	// Header holds the original request's headers (canonical names):
	// Authorization and any identity headers the client sent.
	Header http.Header
	// Peer is the gateway's TCP address (never a forwarded one).
	Peer netip.Addr
	// Method and Path (with query) are the original request's; needed
	// only when Authorize is set (missing: 400 missing_original_path).
	Method, Path string
	// Authorize: ask the decision point about Method and Path, and answer
	// bypass paths without credentials (the callout with
	// auth.authenticate_authorize; always for Envoy ext_authz).
	Authorize bool
	// RequireToken: a request without Authorization is refused (401
	// missing_token, the callout's rule); otherwise it is anonymous and the
	// decision point decides (Envoy ext_authz).
	RequireToken bool
	// RequestID and RemoteAddr identify the request in security logs.
	RequestID, RemoteAddr string

	log reqFacts
}

// GatewayResult is an allowed gateway check.
type GatewayResult struct {
	// Bypassed: the original request is on a bypass path; no identity.
	Bypassed bool
	// Principal is the caller; nil when anonymous or bypassed.
	Principal *authn.Principal
	// Authorized: the decision point allowed the original request.
	Authorized bool
	// Challenge is the WWW-Authenticate value of a 401 refusal ("" for
	// the plain "Bearer" every 401 carries).
	Challenge string
	// Reason is the rule that allowed an authorized request.
	Reason string
}

// Gateway is the gateway check for servers outside this package (the
// Envoy ext_authz gRPC server): the same identifier, decision point,
// metrics and security log as the HTTP callout.
type Gateway struct{ s *Server }

// NewGateway builds the gateway check from the API's dependencies.
func NewGateway(o Options) *Gateway { return &Gateway{s: newServer(o)} }

// Check authenticates and (with Authorize) authorizes req. A refusal or a
// failure is an *apierror.Error: 400, 401 (see Challenge), 403 for a
// deny; 5xx when no decision could be made (identity provider or decision
// point unavailable, misconfiguration), which the caller must treat as a
// deny too. Other errors are internal.
func (g *Gateway) Check(ctx context.Context, req GatewayRequest) (GatewayResult, error) {
	req.log = reqFacts{ctx: ctx, id: req.RequestID, remote: req.RemoteAddr, method: req.Method,
		path: strings.SplitN(req.Path, "?", 2)[0], source: decisionlog.SourceExtAuthz}
	return g.s.checkGateway(ctx, req)
}

// checkGateway is the one gateway check (authn.md "Gateway callout" and
// "Envoy ext_authz gRPC"): identity headers are never identity here (in
// production mode they are refused); bypass paths are answered without
// credentials; the bearer token is validated by the pipeline's
// authn.Identifier; the decision point decides on the original request.
func (s *Server) checkGateway(ctx context.Context, req GatewayRequest) (GatewayResult, error) {
	if err := s.ident.RefuseIdentityHeaders(authn.Credentials{Header: req.Header, Peer: req.Peer}); err != nil {
		return GatewayResult{}, s.refusedAt(req.log, err)
	}
	method := strings.ToUpper(req.Method)
	if req.Authorize {
		if method == "" || req.Path == "" {
			return GatewayResult{}, apierror.BadRequest("missing_original_path", "The original request's method and path are missing")
		}
		canonical, valid := authz.CanonicalPath(req.Path)
		if valid && bypassed(method, strings.SplitN(canonical, "?", 2)[0]) {
			return GatewayResult{Bypassed: true}, nil
		}
	}
	var p *authn.Principal
	if header := req.Header.Get("Authorization"); header != "" {
		if !s.ident.BearerConfigured() {
			s.log.ErrorContext(ctx, "gateway check called but no token validator is configured (enable auth.oidc, auth.access_keys or auth.allow_unsigned_jwt)")
			return GatewayResult{}, apierror.New(http.StatusInternalServerError, "misconfigured", "No bearer token validation is configured")
		}
		var err error
		if p, err = s.ident.Bearer(ctx, header); err != nil {
			// the same challenge as on API paths
			return GatewayResult{Challenge: bearerChallengeFor(err)}, s.refusedAt(req.log, err)
		}
	} else if req.RequireToken {
		return GatewayResult{}, s.refusedAt(req.log, authn.MissingToken())
	}
	s.lastSeen.SeenCaller(p) // nil (anonymous) records nothing
	s.keyUsed(p)
	if !req.Authorize {
		return GatewayResult{Principal: p}, nil
	}
	d, err := s.decisionAt(ctx, s.pdp, req.log, p, method, req.Path)
	if err != nil {
		return GatewayResult{}, err
	}
	return GatewayResult{Principal: p, Authorized: true, Reason: d.Reason}, nil
}

// setIdentityHeaders writes the trusted identity headers a gateway
// forwards upstream: each only when it has a value.
func setIdentityHeaders(h http.Header, p *authn.Principal, authorized bool) {
	vals := make([]string, 0, 5) // one array for every value: h.Set allocates one per header
	eachIdentityHeader(p, authorized, func(name, v string) {
		vals = append(vals, v)
		h[authn.HeaderKey(name)] = vals[len(vals)-1 : len(vals) : len(vals)]
	})
}

// IdentityHeaderValues are the identity headers an allowed gateway check
// sends upstream (authn.md "Gateway callout", step 5): the principal's id,
// email, comma-joined groups and space-joined scopes, each only when it
// has a value, and X-NMP-Authorized: true when the decision point allowed
// the request. p may be nil (anonymous).
func IdentityHeaderValues(p *authn.Principal, authorized bool) map[string]string {
	h := map[string]string{}
	eachIdentityHeader(p, authorized, func(name, v string) { h[name] = v })
	return h
}

// eachIdentityHeader calls set for each identity header that has a value.
func eachIdentityHeader(p *authn.Principal, authorized bool, set func(name, v string)) {
	if p != nil {
		for _, h := range [...]struct{ name, v string }{
			{authn.HeaderPrincipalID, p.ID},
			{authn.HeaderPrincipalEmail, p.Email},
			{authn.HeaderPrincipalGroups, strings.Join(p.Groups, ",")},
			{authn.HeaderScopes, strings.Join(p.Scopes, " ")},
		} {
			if h.v != "" {
				set(h.name, h.v)
			}
		}
	}
	if authorized {
		set(authn.HeaderAuthorized, "true")
	}
}

// bypassedBody is the callout's answer for a bypass path.
var bypassedBody = []byte(`{"email":null,"groups":[],"jti":null,"principal":null,"scopes":[],"token_kind":null}` + "\n")

// appendCalloutBody appends the callout's answer for p, as encoding/json
// encodes {"principal", "token_kind", "email", "groups", "scopes", "jti"}
// (members sorted; empty email and jti are null, no groups or scopes []).
func appendCalloutBody(b []byte, p *authn.Principal) []byte {
	nullable := func(b []byte, s string) []byte {
		if s == "" {
			return append(b, "null"...)
		}
		return appendJSONString(b, s)
	}
	kind := "oidc_access_token"
	if p.AccessKey {
		kind = "access_key"
	}
	b = nullable(append(b, `{"email":`...), p.Email)
	b = appendJSONStrings(append(b, `,"groups":`...), p.Groups)
	b = nullable(append(b, `,"jti":`...), p.TokenID)
	b = appendJSONString(append(b, `,"principal":`...), p.ID)
	b = appendJSONStrings(append(b, `,"scopes":`...), p.Scopes)
	b = appendJSONString(append(b, `,"token_kind":`...), kind)
	return append(b, "}\n"...)
}
