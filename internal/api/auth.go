package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/decisionlog"
	"github.com/nmp-project/nmp/internal/metrics"
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

// peerAddr is the request's TCP peer (RemoteAddr, never
// X-Forwarded-For); invalid when it cannot be parsed.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr, _ := netip.ParseAddr(host)
	return addr
}

// credentials are what the request presents, for authn.Identifier.
func credentials(r *http.Request) authn.Credentials {
	return authn.Credentials{Header: r.Header, Peer: peerAddr(r)}
}

// reqFacts are what a security log line says about the request: an HTTP
// request's (factsOf) or a gateway check's from another transport; source
// is where its decisions come from in the decision log.
type reqFacts struct {
	ctx                      context.Context
	id, remote, method, path string
	source                   decisionlog.Source
}

func factsOf(r *http.Request) reqFacts {
	return reqFacts{ctx: r.Context(), id: requestID(r.Context()), remote: r.RemoteAddr, method: r.Method, path: r.URL.Path,
		source: decisionlog.SourceAPI}
}

// securityAt logs one security-relevant rejection (authn.md "Logging
// rules"); never a credential.
func (s *Server) securityAt(f reqFacts, reason string, p *authn.Principal, attrs ...any) {
	base := []any{"event", "security", "reason", reason, "request_id", f.id,
		"remote_addr", f.remote, "method", f.method, "path", f.path}
	if p != nil && p.ID != "" {
		base = append(base, "principal", p.ID)
	}
	s.log.WarnContext(f.ctx, "request rejected", append(base, attrs...)...)
}

// identify is the first stage of the request pipeline (authn.md "Request
// pipeline", steps 2-7): it establishes who is calling with the
// transport-independent authn.Identifier and puts the principal into the
// context; refused credentials end the request here. Bypass paths get only
// the identity-header trust check.
func (s *Server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := credentials(r)
		if bypassed(r.Method, r.URL.Path) {
			if err := s.ident.CheckSource(c); err != nil {
				s.writeError(w, r, s.refused(r, err))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		id, err := s.ident.Identify(r.Context(), c)
		if err != nil {
			setBearerChallenge(w.Header(), err)
			s.writeError(w, r, s.refused(r, err))
			return
		}
		ctx := r.Context()
		ri, ok := ctx.Value(infoKey{}).(*reqInfo)
		if !ok { // not under withRequestID: a request context of its own
			ri = &reqInfo{}
			ctx = &requestContext{Context: ctx, ri: ri}
			r = r.WithContext(ctx)
		}
		ri.preauthorized = id.Authorized
		if id.Principal != nil {
			s.lastSeen.SeenCaller(id.Principal)
			s.keyUsed(id.Principal)
		}
		// From here the request's context answers the principal and the
		// actor (and request id) of the audit events of its store writes.
		ri.identified, ri.caller = true, id.Principal
		next.ServeHTTP(w, r)
	})
}

// authorize is the second stage (step 8): it asks the decision point
// whether the identified caller may send this request. Nothing is asked
// with auth disabled, on bypass paths, or when a trusted gateway already
// authorized the request.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth.Enabled && !bypassed(r.Method, r.URL.Path) && !info(r.Context()).preauthorized {
			if err := s.decide(r, authn.FromContext(r.Context())); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refused logs refused credentials (one security line with the reason,
// never a credential), counts a refused token, and maps the rejection to
// the client's error: 400 for malformed identity headers, else 401.
func (s *Server) refused(r *http.Request, err error) error {
	return s.refusedAt(factsOf(r), err)
}

func (s *Server) refusedAt(f reqFacts, err error) error {
	var rej *authn.Rejection
	if !errors.As(err, &rej) {
		return err // not a rejection: rendered as an internal error
	}
	var attrs []any
	if rej.Detail != "" {
		attrs = append(attrs, "detail", rej.Detail)
	}
	if rej.Err != nil {
		s.metrics.TokenValidationFailures.WithLabelValues(rej.Detail).Inc()
		var it *authn.InvalidToken
		if errors.As(rej.Err, &it) {
			attrs = append(attrs, it.LogAttrs()...) // the safe facts, never the token
		}
	}
	s.securityAt(f, rej.Reason, nil, attrs...)
	return rejectionError(rej)
}

// setBearerChallenge sets the RFC 6750 challenge of a refused bearer
// token: WWW-Authenticate: Bearer error="invalid_token",
// error_description="<fixed phrase for the reason>". Other rejections
// keep the plain "Bearer" challenge writeError adds to every 401.
func setBearerChallenge(h http.Header, err error) {
	if c := bearerChallengeFor(err); c != "" {
		h.Set("WWW-Authenticate", c)
	}
}

// bearerChallengeFor is the invalid_token challenge of a refused bearer
// token, "" for other errors.
func bearerChallengeFor(err error) string {
	var rej *authn.Rejection
	if errors.As(err, &rej) && rej.Code == authn.CodeInvalidToken {
		return bearerChallenge(rej.Detail)
	}
	return ""
}

// bearerChallenge is the invalid_token challenge for a refusal reason.
// The description is a fixed phrase (authn.TokenErrorDescription), never
// token content; characters RFC 6750 does not allow are dropped anyway.
func bearerChallenge(reason string) string {
	desc := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, authn.TokenErrorDescription(reason))
	return `Bearer error="invalid_token", error_description="` + desc + `"`
}

// rejectionError is the HTTP shape of refused credentials.
func rejectionError(rej *authn.Rejection) *apierror.Error {
	status := http.StatusUnauthorized
	switch {
	case rej.BadInput():
		status = http.StatusBadRequest
	case rej.Unavailable():
		status = http.StatusServiceUnavailable
	}
	return &apierror.Error{Status: status, Code: rej.Code, Detail: rej.Message}
}

// decide asks the PDP about this request; a deny is 401 without a
// principal id, else 403; a failure is 503/504/502 (fail closed).
func (s *Server) decide(r *http.Request, p *authn.Principal) error {
	return s.decideWith(s.decisionPointFor(r.URL.EscapedPath()), r, p, r.Method, r.URL.EscapedPath())
}

func (s *Server) decideWith(dp pdp.DecisionPoint, r *http.Request, p *authn.Principal, method, path string) error {
	return s.decideAt(r.Context(), dp, factsOf(r), p, method, path)
}

// decideAt asks dp whether p may send method and path; f is only used
// for logging.
func (s *Server) decideAt(ctx context.Context, dp pdp.DecisionPoint, f reqFacts, p *authn.Principal, method, path string) error {
	_, err := s.decisionAt(ctx, dp, f, p, method, path)
	return err
}

// decisionAt is decideAt that also returns the allowing decision (its
// reason names the rule). It is the one place where the decisions on API
// requests and gateway checks are made, so the one place they are logged
// (logDecision, once per decision).
func (s *Server) decisionAt(ctx context.Context, dp pdp.DecisionPoint, f reqFacts, p *authn.Principal, method, path string) (authz.Decision, error) {
	var start time.Time
	if s.decisions != nil {
		start = time.Now()
	}
	d, err := s.allow(ctx, dp, p, method, path)
	if err != nil {
		return authz.Decision{}, s.pdpFailedAt(f, p, err)
	}
	if s.decisions != nil {
		s.logDecision(decisionlog.Entry{RequestID: f.id, Method: method, Path: path, Latency: time.Since(start), Source: f.source}, p, d)
	}
	return d, s.refuseDenied(f, p, d, method, path)
}

// logDecision hands decision d about principal p (nil: anonymous) to the
// decision log: ids only, never a credential.
func (s *Server) logDecision(e decisionlog.Entry, p *authn.Principal, d authz.Decision) {
	e.Allowed, e.Reason = d.Allowed, d.Reason
	if p != nil {
		e.Principal, e.Email = p.ID, p.Email
		if p.OnBehalfOf != nil {
			e.OnBehalfOf = p.OnBehalfOf.ID
		}
	}
	s.decisions.Record(e)
}

// allow is the allow decision for p sending method and path: dp's, after
// an access key's own scopes (keyScopeDecision).
func (s *Server) allow(ctx context.Context, dp pdp.DecisionPoint, p *authn.Principal, method, path string) (authz.Decision, error) {
	if d, decided := s.keyScopeDecision(p, method, path); decided {
		return d, nil
	}
	return dp.Allow(ctx, pdp.RequestInput(p, method, path))
}

// refuseDenied records the decision and turns a deny into the API's
// refusal (400 invalid_scope, 401 without a principal, else 403 saying
// what the endpoint table asks of method and path: see forbidden).
func (s *Server) refuseDenied(f reqFacts, p *authn.Principal, d authz.Decision, method, path string) error {
	s.metrics.Decisions.Inc(metrics.DecisionKey{Allowed: d.Allowed, Reason: d.Reason})
	if d.Allowed {
		return nil
	}
	s.securityAt(f, "authz_denied", p, "pdp_reason", d.Reason, "checked_method", method)
	if d.Reason == "invalid_scope" {
		return apierror.BadRequest("invalid_scope", "Permission-shaped scopes are not accepted")
	}
	if p == nil || p.ID == "" {
		return apierror.New(http.StatusUnauthorized, "unauthorized", "Unauthorized")
	}
	return s.forbidden(p, d, method, path)
}

// pdpFailed logs a decision that could not be made (one security line)
// and maps it as authz.md "Failure mapping" says; the request is refused.
func (s *Server) pdpFailed(r *http.Request, p *authn.Principal, err error) error {
	return s.pdpFailedAt(factsOf(r), p, err)
}

func (s *Server) pdpFailedAt(f reqFacts, p *authn.Principal, err error) error {
	var ae *apierror.Error
	switch pdp.Failure(err) {
	case pdp.ErrUnavailable:
		ae = apierror.New(http.StatusServiceUnavailable, "pdp_unavailable", "Authorization service unavailable")
	case pdp.ErrTimeout:
		ae = apierror.New(http.StatusGatewayTimeout, "pdp_timeout", "Authorization service timeout")
	default:
		ae = apierror.New(http.StatusBadGateway, "pdp_error", "Authorization service error")
	}
	s.securityAt(f, "pdp_unavailable", p, "failure", ae.Code, "error", err.Error())
	return ae
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
