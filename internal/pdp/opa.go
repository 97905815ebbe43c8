package pdp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/metrics"
)

// OPA is the decision point of an external Open Policy Agent running the
// shipped Rego policy: allow, has_permissions and has_role are POSTed to
// {base}/v1/data/authz/{entrypoint} as {"input": …} and answered from
// {"result": …}. Failures map like every decision point's (ErrUnavailable,
// ErrTimeout, ErrBadAnswer); an absent or empty result is a deny, never an
// error that could allow.
//
// VisibleWorkspaces has no OPA entrypoint. It is answered by the embedded
// engine of this process, which the policy syncer keeps in step with the
// store whatever the provider (it also feeds the OPA bundle), so lists show
// the same workspaces OPA would authorize once it holds the same revision.
type OPA struct {
	base    string // base URL without a trailing "/"
	timeout time.Duration
	client  *http.Client
	local   *Embedded
	log     *slog.Logger
	metrics *opaMetrics

	remoteMu sync.RWMutex
	remote   RemoteStatus // last health check (see Monitor)
}

var _ DecisionPoint = (*OPA)(nil)

// OPAOptions configure NewOPA.
type OPAOptions struct {
	// BaseURL is auth.policy_decision_point_base_url (http:// or https://).
	BaseURL string
	// Timeout bounds each call, connection included
	// (auth.policy_decision_point_request_timeout_seconds).
	Timeout time.Duration
	// Local is this process's engine; it answers VisibleWorkspaces.
	Local *authz.Engine
	// Metrics receives nmp_pdp_requests_total and the latency histogram;
	// nil records nothing.
	Metrics *metrics.Metrics
	// Log receives one line per failed call (never the input or a
	// credential).
	Log *slog.Logger
	// MaxConns is the number of pooled keep-alive connections to OPA
	// (default 256): enough for concurrent requests not to reconnect.
	MaxConns int
}

// maxAnswer bounds the body read from OPA: the policy's answers are a few
// hundred bytes.
const maxAnswer = 1 << 20

// The result label values of nmp_pdp_requests_total.
const (
	resultAllow       = "allow"
	resultDeny        = "deny"
	resultUnavailable = "unavailable"
	resultTimeout     = "timeout"
	resultError       = "error"
)

// ReasonNoResult is the reason of a deny for an absent or empty result
// (OPA has no policy at the path, or it is undefined for the input).
const ReasonNoResult = "no_result"

// NewOPA builds the OPA decision point; nothing is contacted yet.
func NewOPA(o OPAOptions) (*OPA, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OPA base URL must be an absolute http:// or https:// URL")
	}
	if o.Timeout <= 0 {
		return nil, errors.New("OPA request timeout must be positive")
	}
	if o.Local == nil {
		return nil, errors.New("OPA decision point needs the local engine for workspace visibility")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		// OPA is a sidecar or a service next to this one: no proxy.
		DialContext:         dialer.DialContext,
		MaxIdleConns:        o.MaxConns,
		MaxIdleConnsPerHost: o.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: o.Timeout,
		ForceAttemptHTTP2:   true,
	}
	p := &OPA{
		base: strings.TrimSuffix(o.BaseURL, "/"), timeout: o.Timeout,
		client: &http.Client{Transport: transport,
			// OPA's data API does not redirect; following one would send
			// the input somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		local: NewEmbedded(o.Local), log: o.Log, metrics: newOPAMetrics(o.Metrics),
		remote: RemoteStatus{Err: errors.New("not checked yet")},
	}
	return p, nil
}

// CloseIdleConnections closes the pooled connections (at shutdown).
func (p *OPA) CloseIdleConnections() { p.client.CloseIdleConnections() }

// The inputs go to OPA as the authz input types marshal (the entrypoints'
// field names, as the embedded PDP entrypoint takes them); an empty
// optional field is left out or sent empty, which the policy reads alike.

// Allow implements DecisionPoint: the allow entrypoint.
func (p *OPA) Allow(ctx context.Context, in authz.Input) (authz.Decision, error) {
	const entrypoint = "allow"
	start := time.Now()
	res, err := p.query(ctx, entrypoint, in)
	var d authz.Decision
	if err == nil {
		d, err = decodeAllow(res)
	}
	p.done(entrypoint, start, d.Allowed, err)
	if err != nil {
		return authz.Decision{}, err
	}
	return d, nil
}

// HasPermissions implements DecisionPoint: the has_permissions entrypoint.
func (p *OPA) HasPermissions(ctx context.Context, in authz.PermissionsInput) (bool, error) {
	const entrypoint = "has_permissions"
	start := time.Now()
	if in.Permissions == nil {
		in.Permissions = []string{} // always a list
	}
	res, err := p.query(ctx, entrypoint, in)
	ok := false
	if err == nil {
		ok, err = decodeFlag(res, "allowed")
	}
	p.done(entrypoint, start, ok, err)
	return ok && err == nil, err
}

// HasRole implements DecisionPoint: the has_role entrypoint.
func (p *OPA) HasRole(ctx context.Context, in authz.RoleInput) (bool, error) {
	const entrypoint = "has_role"
	start := time.Now()
	res, err := p.query(ctx, entrypoint, in)
	ok := false
	if err == nil {
		ok, err = decodeFlag(res, "has_role")
	}
	p.done(entrypoint, start, ok, err)
	return ok && err == nil, err
}

// VisibleWorkspaces implements DecisionPoint from this process's engine
// (OPA has no such entrypoint; see OPA).
func (p *OPA) VisibleWorkspaces(ctx context.Context, s authz.Subject) (Visible, error) {
	return p.local.VisibleWorkspaces(ctx, s)
}

// done records one call: metric, latency and, for a failure, one log line.
func (p *OPA) done(entrypoint string, start time.Time, allowed bool, err error) {
	elapsed := time.Since(start)
	result := resultDeny
	switch {
	case err != nil:
		switch Failure(err) {
		case ErrUnavailable:
			result = resultUnavailable
		case ErrTimeout:
			result = resultTimeout
		default:
			result = resultError
		}
		p.log.Warn("OPA decision failed", "entrypoint", entrypoint, "failure", result,
			"elapsed_ms", elapsed.Milliseconds(), "error", err.Error())
	case allowed:
		result = resultAllow
	}
	p.metrics.observe(entrypoint, result, elapsed)
}

// query POSTs {"input": input} to the entrypoint and returns the members
// of the result object: nil for an absent, null or empty result.
func (p *OPA) query(ctx context.Context, entrypoint string, input any) (map[string]json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		return nil, fmt.Errorf("%w: encode input: %w", ErrBadAnswer, err)
	}
	path := "/v1/data/authz/" + entrypoint
	raw, err := p.call(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("%w: POST %s: answer is not a JSON object: %w", ErrBadAnswer, path, err)
	}
	if len(answer.Result) == 0 || bytes.Equal(answer.Result, []byte("null")) {
		return nil, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(answer.Result, &members); err != nil {
		return nil, fmt.Errorf("%w: POST %s: result is not an object", ErrBadAnswer, path)
	}
	return members, nil
}

// call sends one request to OPA within the per-call timeout and returns
// the body of a 2xx answer (read up to maxAnswer).
func (p *OPA) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cctx, method, p.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	// Queries have no side effect: let the transport retry one on a pooled
	// connection that OPA closed meanwhile (the header is not sent).
	req.Header["X-Idempotency-Key"] = nil
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, p.transportError(ctx, cctx, method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, p.transportError(ctx, cctx, method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: %s %s: status %d%s", ErrBadAnswer, method, path, resp.StatusCode, opaErrorCode(raw))
	}
	if len(raw) > maxAnswer {
		return nil, fmt.Errorf("%w: %s %s: answer larger than %d bytes", ErrBadAnswer, method, path, maxAnswer)
	}
	return raw, nil
}

// transportError classifies a failed exchange: our timeout (or the
// caller's deadline) is ErrTimeout, anything else that kept an answer from
// coming (refused connection, reset, unknown host, the caller giving up)
// ErrUnavailable. The message never carries the URL's credentials.
func (p *OPA) transportError(parent, cctx context.Context, method, path string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var nerr net.Error
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded) && parent.Err() == nil:
		return fmt.Errorf("%w: %s %s: no answer within %v", ErrTimeout, method, path, p.timeout)
	case errors.Is(parent.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %s %s: %w", ErrTimeout, method, path, parent.Err())
	case errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Errorf("%w: %s %s: %w", ErrTimeout, method, path, err)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
}

// opaErrorCode is OPA's error code from an error body (", code x"), or "".
func opaErrorCode(raw []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Code == "" || len(e.Code) > 64 {
		return ""
	}
	return ", code " + e.Code
}

// decodeAllow reads {"allowed": bool, "reason": string, "headers": …}.
func decodeAllow(res map[string]json.RawMessage) (authz.Decision, error) {
	if len(res) == 0 {
		return authz.Decision{Allowed: false, Reason: ReasonNoResult}, nil
	}
	allowed, err := decodeFlag(res, "allowed")
	if err != nil {
		return authz.Decision{}, err
	}
	d := authz.Decision{Allowed: allowed}
	if raw, ok := res["reason"]; ok {
		if err := json.Unmarshal(raw, &d.Reason); err != nil || bytes.Equal(raw, []byte("null")) {
			return authz.Decision{}, fmt.Errorf("%w: allow result: reason is not a string", ErrBadAnswer)
		}
	}
	return d, nil
}

// decodeFlag reads the boolean member name of a result; an empty result
// is false (a deny), a member that is missing or not a boolean is a bad
// answer.
func decodeFlag(res map[string]json.RawMessage, name string) (bool, error) {
	if len(res) == 0 {
		return false, nil
	}
	raw, ok := res[name]
	if !ok {
		return false, fmt.Errorf("%w: result has no %q", ErrBadAnswer, name)
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: result %q is not a boolean", ErrBadAnswer, name)
}

// opaMetrics are nmp_pdp_requests_total and
// nmp_pdp_request_duration_seconds for provider "opa".
type opaMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newOPAMetrics(m *metrics.Metrics) *opaMetrics {
	if m == nil {
		return nil
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nmp_pdp_requests_total",
		Help: "Calls to the policy decision point by provider, entrypoint and result (allow, deny, unavailable, timeout, error).",
	}, []string{"provider", "entrypoint", "result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nmp_pdp_request_duration_seconds",
		Help:    "Latency of calls to the policy decision point by provider and entrypoint, failures included.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"provider", "entrypoint"})
	return &opaMetrics{requests: register(m.Registry(), requests), latency: register(m.Registry(), latency)}
}

// register registers c, or returns the collector already registered under
// its name (a second decision point on the same registry shares it).
func register[C prometheus.Collector](r *prometheus.Registry, c C) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("pdp: register metric: " + err.Error())
	}
	return c
}

func (m *opaMetrics) observe(entrypoint, result string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues("opa", entrypoint, result).Inc()
	m.latency.WithLabelValues("opa", entrypoint).Observe(elapsed.Seconds())
}
