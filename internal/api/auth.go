package api

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/pdp"
)

// bypassed reports the paths served without credentials or PDP
// (api.md "Bypass paths and health").
func bypassed(method, path string) bool {
	if path == "/apis/auth/authenticate" || strings.HasPrefix(path, "/apis/auth/authenticate/") {
		return true
	}
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	switch path {
	case "/health/live", "/health/ready", "/status", "/cluster-info", "/metrics", "/apis/auth/discovery", "/apis/auth/jwks":
		return true
	}
	return false
}

// trustedPeer reports whether the TCP peer (never X-Forwarded-For) is in
// auth.trusted_proxies.
func (s *Server) trustedPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// security logs one security-relevant rejection (authn.md "Logging
// rules"); never a credential.
func (s *Server) security(r *http.Request, reason string, p *authn.Principal, attrs ...any) {
	base := []any{"event", "security", "reason", reason, "request_id", requestID(r.Context()),
		"remote_addr", r.RemoteAddr, "method", r.Method, "path", r.URL.Path}
	if p != nil && p.ID != "" {
		base = append(base, "principal", p.ID)
	}
	s.log.WarnContext(r.Context(), "request rejected", append(base, attrs...)...)
}

// authenticate is the request pipeline's authentication and
// authorization stage (authn.md "Request pipeline", steps 2-8).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authorize(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if p != nil {
			r = r.WithContext(authn.WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorize(r *http.Request) (*authn.Principal, error) {
	cfg := s.cfg.Auth
	hasIdentity := authn.HasIdentityHeaders(r.Header)
	trusted := hasIdentity && s.trustedPeer(r)
	if hasIdentity && !trusted && cfg.Enabled && s.cfg.ProductionMode() { // step 2
		s.security(r, "untrusted_identity_headers", nil)
		return nil, apierror.New(http.StatusUnauthorized, "untrusted_identity_headers", "Identity headers are not accepted from this source")
	}
	if bypassed(r.Method, r.URL.Path) { // step 3
		return nil, nil
	}
	p, err := authn.ParseIdentityHeaders(r.Header)
	if err != nil {
		s.security(r, "invalid_header", nil)
		return nil, err
	}
	if !cfg.Enabled { // step 4
		return p, nil
	}
	if p != nil { // step 5
		if trusted && strings.EqualFold(r.Header.Get(authn.HeaderAuthorized), "true") {
			return p, nil
		}
		return p, s.decide(r, p)
	}
	if h := r.Header.Get("Authorization"); h != "" { // step 6
		if p, err = s.bearer(r, h); err != nil {
			return nil, err
		}
		return p, s.decide(r, p)
	}
	return nil, s.decide(r, nil) // step 7
}

// bearer validates an Authorization header.
func (s *Server) bearer(r *http.Request, header string) (*authn.Principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		s.security(r, "invalid_token", nil, "detail", "malformed_authorization_header")
		return nil, invalidToken()
	}
	if s.tokens == nil {
		s.security(r, "invalid_token", nil, "detail", "bearer_not_configured")
		return nil, apierror.New(http.StatusUnauthorized, "bearer_not_configured", "Bearer token authentication not configured")
	}
	p, err := s.tokens.Validate(r.Context(), strings.TrimSpace(token))
	if err != nil {
		var it *authn.InvalidToken
		sub := "invalid"
		if errors.As(err, &it) {
			sub = it.Reason
		}
		s.metrics.TokenValidationFailures.WithLabelValues(sub).Inc()
		s.security(r, "invalid_token", nil, "detail", sub)
		return nil, invalidToken()
	}
	return p, nil
}

func invalidToken() error {
	return apierror.New(http.StatusUnauthorized, "invalid_token", "Invalid bearer token")
}

// decide asks the PDP about this request; a deny is 401 without a
// principal id, else 403; a failure is 503/504/502 (fail closed).
func (s *Server) decide(r *http.Request, p *authn.Principal) error {
	return s.decideFor(r, p, r.Method, r.URL.EscapedPath())
}

// decideFor asks about another request than r (the gateway callout's
// original request); r is only used for logging.
func (s *Server) decideFor(r *http.Request, p *authn.Principal, method, path string) error {
	d, err := s.pdp.Allow(r.Context(), pdp.RequestInput(p, method, path))
	if err != nil {
		return s.pdpFailed(r, p, err)
	}
	s.metrics.AuthzDecisions.WithLabelValues(boolLabel(d.Allowed), d.Reason).Inc()
	if d.Allowed {
		return nil
	}
	s.security(r, "authz_denied", p, "pdp_reason", d.Reason, "checked_method", method)
	if d.Reason == "invalid_scope" {
		return apierror.BadRequest("invalid_scope", "Permission-shaped scopes are not accepted")
	}
	if p == nil || p.ID == "" {
		return apierror.New(http.StatusUnauthorized, "unauthorized", "Unauthorized")
	}
	return apierror.New(http.StatusForbidden, "forbidden", "Forbidden")
}

// pdpFailed logs a decision that could not be made (one security line)
// and maps it as authz.md "Failure mapping" says; the request is refused.
func (s *Server) pdpFailed(r *http.Request, p *authn.Principal, err error) error {
	var ae *apierror.Error
	switch pdp.Failure(err) {
	case pdp.ErrUnavailable:
		ae = apierror.New(http.StatusServiceUnavailable, "pdp_unavailable", "Authorization service unavailable")
	case pdp.ErrTimeout:
		ae = apierror.New(http.StatusGatewayTimeout, "pdp_timeout", "Authorization service timeout")
	default:
		ae = apierror.New(http.StatusBadGateway, "pdp_error", "Authorization service error")
	}
	s.security(r, "pdp_unavailable", p, "failure", ae.Code, "error", err.Error())
	return ae
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
