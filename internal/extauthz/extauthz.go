// Package extauthz is the Envoy external authorization gRPC server
// (envoy.service.auth.v3.Authorization/Check, authn.md "Envoy ext_authz
// gRPC"). Each Check runs the gateway check of the HTTP callout
// (api.Gateway: the same token validation and the same decision point) on
// the original request Envoy describes, and answers with the identity
// headers for the upstream or with the response Envoy sends the client.
package extauthz

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
)

// Check results, the label of nmp_ext_authz_checks_total.
const (
	ResultAllowed      = "allowed"      // OK with the identity headers
	ResultBypassed     = "bypassed"     // OK for a bypass path, no identity
	ResultUnauthorized = "unauthorized" // denied 401
	ResultForbidden    = "forbidden"    // denied 403
	ResultBadRequest   = "bad_request"  // denied 400 (malformed identity headers, permission-shaped scopes)
	ResultUnavailable  = "unavailable"  // error status: no decision (decision point, identity provider)
	ResultError        = "error"        // error status: anything else (misconfiguration, malformed CheckRequest)
)

// serviceName is the Authorization service's name in grpc.health.v1.
const serviceName = "envoy.service.auth.v3.Authorization"

// Options configure the server.
type Options struct {
	// Address is the listen address (auth.ext_authz.grpc_address).
	Address string
	// Listener, when set, is served instead of listening on Address
	// (tests, socket activation).
	Listener net.Listener
	// Gateway is the gateway check shared with the HTTP callout.
	Gateway *api.Gateway
	// TLS serves TLS (set ClientAuth for mutual TLS); nil: plaintext.
	TLS *tls.Config
	// Registerer receives the metrics (metrics.Metrics.Registry()); nil:
	// not registered.
	Registerer prometheus.Registerer
	// Log receives errors and lifecycle lines.
	Log *slog.Logger
	// StopTimeout bounds the graceful stop (in-flight Checks finish);
	// then the remaining calls are cancelled. 0: 10 s.
	StopTimeout time.Duration
}

// Server is the ext_authz gRPC server. It is a lifecycle component: Run
// serves on the listener bound by Listen until its context ends, then
// stops gracefully.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	opts     Options
	grpc     *grpc.Server
	health   *health.Server
	ln       net.Listener
	checks   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the server; it does not listen yet.
func New(o Options) (*Server, error) {
	if o.Gateway == nil {
		return nil, errors.New("extauthz: no gateway check")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	s := &Server{opts: o, health: health.NewServer(),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nmp_ext_authz_checks_total",
			Help: "Envoy ext_authz Check calls by result (allowed, bypassed, unauthorized, forbidden, bad_request, unavailable, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nmp_ext_authz_check_duration_seconds",
			Help:    "Envoy ext_authz Check latency by result.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"result"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.checks, s.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("extauthz: register metrics: %w", err)
			}
		}
	}
	var sopts []grpc.ServerOption
	if o.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	s.grpc = grpc.NewServer(sopts...)
	authv3.RegisterAuthorizationServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Listen binds Options.Address; a server that cannot listen fails at
// startup, not in the background.
func (s *Server) Listen() error {
	if s.opts.Listener != nil {
		s.ln = s.opts.Listener
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("auth.ext_authz.grpc_address: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Name implements lifecycle.Component.
func (s *Server) Name() string { return "envoy ext_authz" }

// Run implements lifecycle.Component: it serves until ctx ends, then
// reports NOT_SERVING, lets in-flight Checks finish (up to StopTimeout)
// and returns nil.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("extauthz: Run before Listen")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()
	s.opts.Log.Info("serving Envoy ext_authz", "address", s.ln.Addr().String(), "tls", s.opts.TLS != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.opts.StopTimeout):
		s.opts.Log.Warn("Envoy ext_authz: graceful stop timed out; cancelling the remaining calls")
		s.grpc.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Check implements envoy.service.auth.v3.Authorization/Check.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	resp, result, err := s.check(ctx, req)
	s.checks.WithLabelValues(result).Inc()
	s.duration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return resp, err
}

func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, string, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return nil, ResultError, status.Error(codes.InvalidArgument, "attributes.request.http is required")
	}
	header := requestHeader(h)
	greq := api.GatewayRequest{Header: header, Peer: peerAddr(ctx), Method: h.GetMethod(), Path: h.GetPath(),
		Authorize: true, RequestID: h.GetId(), RemoteAddr: sourceAddr(ctx, req)}
	res, err := s.opts.Gateway.Check(ctx, greq)
	if err != nil {
		return s.denied(ctx, res, err)
	}
	set := map[string]string{}
	result := ResultBypassed
	if !res.Bypassed {
		set = api.IdentityHeaderValues(res.Principal, res.Authorized)
		result = ResultAllowed
	}
	ok := &authv3.OkHttpResponse{HeadersToRemove: headersToRemove(header, set)}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(name), Value: set[name]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	resp := &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}
	if res.Authorized {
		// For Envoy's access log and later filters (authn.md): which
		// request, who, and the rule that allowed it.
		principal := ""
		if res.Principal != nil {
			principal = res.Principal.ID
		}
		resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			"decision_id":  structpb.NewStringValue(decisionID(h.GetId())),
			"principal_id": structpb.NewStringValue(principal),
			"reason":       structpb.NewStringValue(res.Reason),
		}}
	}
	return resp, result, nil
}

// decisionID is Envoy's request id when it sent one, else a new UUID.
func decisionID(envoyID string) string {
	if envoyID != "" {
		return envoyID
	}
	return uuid.NewString()
}

// denied maps a refused or failed gateway check to a DeniedHttpResponse
// with the API's status and JSON error body: 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 400 INVALID_ARGUMENT, and a check that could not be
// decided (502/503/504) UNAVAILABLE. Only an internal error is a gRPC
// error, which Envoy (failure_mode_allow: false) answers with
// status_on_error.
func (s *Server) denied(ctx context.Context, res api.GatewayResult, err error) (*authv3.CheckResponse, string, error) {
	var ae *apierror.Error
	if !errors.As(err, &ae) {
		s.opts.Log.ErrorContext(ctx, "ext_authz check failed", "error", err)
		return nil, ResultError, status.Error(codes.Internal, "internal error")
	}
	if ae.Status == http.StatusInternalServerError {
		return nil, ResultError, status.Error(codes.Internal, ae.Code+": "+ae.Detail)
	}
	body, jerr := json.Marshal(ae.Body())
	if jerr != nil {
		return nil, ResultError, status.Error(codes.Internal, "internal error")
	}
	headers := []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		{Header: &corev3.HeaderValue{Key: "cache-control", Value: "no-store"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
	}
	code, result := codes.PermissionDenied, ResultForbidden
	switch ae.Status {
	case http.StatusUnauthorized:
		code, result = codes.Unauthenticated, ResultUnauthorized
		challenge := res.Challenge
		if challenge == "" {
			challenge = "Bearer"
		}
		headers = append(headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "www-authenticate", Value: challenge},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	case http.StatusForbidden:
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// The decision point or the identity provider could not answer
		// (already logged as a security line): UNAVAILABLE with the HTTP
		// status the API would give, so Envoy denies with 502/503/504
		// whatever failure_mode_allow says.
		code, result = codes.Unavailable, ResultUnavailable
	default:
		code, result = codes.InvalidArgument, ResultBadRequest
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code), Message: ae.Code},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(ae.Status)}, Headers: headers, Body: string(body)}}}, result, nil
}

// requestHeader is the original request's headers from the CheckRequest:
// the lower-cased headers map, or header_map when Envoy sends raw values
// (encode_raw_headers).
func requestHeader(h *authv3.AttributeContext_HttpRequest) http.Header {
	out := http.Header{}
	for k, v := range h.GetHeaders() {
		out.Add(k, v)
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		out.Add(hv.GetKey(), v)
	}
	return out
}

// headersToRemove lists, lower-cased and sorted, every identity header and
// every other x-nmp-* header the client sent that the answer does not set.
// The headers the answer sets are overwritten instead (Envoy applies
// headers_to_remove after the headers it sets, so listing them would drop
// the trusted values).
func headersToRemove(client http.Header, set map[string]string) []string {
	remove := map[string]bool{}
	for _, name := range authn.IdentityHeaders {
		remove[strings.ToLower(name)] = true
	}
	for name := range client {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-nmp-") {
			remove[l] = true
		}
	}
	for name := range set {
		delete(remove, strings.ToLower(name))
	}
	return slices.Sorted(maps.Keys(remove))
}

// peerAddr is the gRPC peer's IP (Envoy); invalid when unknown.
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// sourceAddr is the downstream client's address as Envoy reports it,
// else the gRPC peer's, for logs.
func sourceAddr(ctx context.Context, req *authv3.CheckRequest) string {
	if sa := req.GetAttributes().GetSource().GetAddress().GetSocketAddress(); sa != nil && sa.GetAddress() != "" {
		return net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue()))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
