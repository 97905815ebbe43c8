// Package api is the HTTP surface of the platform: the entity store
// (/apis/entities/v2 and its /v2/workspaces alias), the auth service
// (/apis/auth), health, status and metrics, on one net/http ServeMux.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/decisionlog"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/lastseen"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/store"
)

// EntitiesPrefix is the canonical prefix of the entity store.
const EntitiesPrefix = "/apis/entities/v2"

// Options are the dependencies of the API.
type Options struct {
	Config *config.Config
	Store  store.Store
	// Roles is the static catalog: defined roles and declared permission
	// ids. It answers vocabulary questions, never authorization ones.
	Roles   *authz.Catalog
	Health  *health.State
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// PDP makes every authorization decision: the middleware, the gateway
	// callout, the PDP entrypoints, self-check, list visibility and the
	// role-binding admin check.
	PDP pdp.DecisionPoint
	// LocalPDP is the in-process evaluator (pdp.NewEmbedded). It decides
	// who may fetch the OPA bundle, even when PDP is an external OPA,
	// which cannot authorize the fetch of its own first bundle. Nil: PDP.
	LocalPDP pdp.DecisionPoint
	// Bundle serves the OPA bundle (nil: the endpoint answers 404).
	Bundle *bundle.Server
	// Tokens validates bearer tokens; nil means no validator is enabled.
	Tokens authn.TokenValidator
	// SigningKeys publishes the platform's own public signing keys at
	// /apis/auth/jwks (*signing.Keys; nil: access keys not enabled, an
	// empty set).
	SigningKeys JWKSSource
	// IdP caches the OIDC issuer's discovery document (nil without OIDC).
	IdP *authn.DiscoveryCache
	// Propagation lets a write that changed role bindings wait until this
	// process's policy holds its revision (nil: nothing to wait for).
	Propagation Propagation
	// PropagationTimeout bounds that wait (0: 30 s).
	PropagationTimeout time.Duration
	// Hardening is what the hardening report needs besides the above.
	Hardening HardeningOptions
	// LastSeen records each authenticated caller's request time (nil:
	// nothing is recorded).
	LastSeen *lastseen.Recorder
	// AccessKeys is the access-key API's minting and policy (zero: access
	// keys disabled).
	AccessKeys AccessKeyOptions
	// KeyUse records when each access key was last used (nil: nothing
	// recorded).
	KeyUse *lastseen.Recorder
	// Clock is the time of access-key metadata and changes (nil: time.Now).
	Clock func() time.Time
	// DecisionLog logs the allow decisions made for requests, gateway
	// checks and self-checks (nil: none).
	DecisionLog *decisionlog.Logger
	// AccessLog logs requests (nil: none).
	AccessLog *accesslog.Logger
}

// JWKSSource is the platform's public signing keys (signing.Keys).
type JWKSSource interface {
	JWKS() jose.JSONWebKeySet
}

// Propagation is this process's policy propagation (policysync.Syncer).
type Propagation interface {
	// Await returns nil once revision is applied here, an error when
	// applying it failed, or ctx's error.
	Await(ctx context.Context, revision int64) error
	// Status reports the applied and known revisions for /status.
	Status() policysync.Status
}

// Server holds the API's dependencies.
type Server struct {
	cfg      *config.Config
	store    store.Store
	roles    *authz.Catalog
	health   *health.State
	metrics  *metrics.Metrics
	log      *slog.Logger
	pdp      pdp.DecisionPoint
	localPDP pdp.DecisionPoint
	// pdp and localPDP for the endpoint's own authorization
	// (decisionPointFor)
	endpointPDP, endpointLocalPDP pdp.DecisionPoint
	bundle                        *bundle.Server
	ident                         *authn.Identifier
	signingKeys                   JWKSSource
	idp                           *authn.DiscoveryCache
	propagation                   Propagation
	propagationTimeout            time.Duration
	hardening                     HardeningOptions
	mux                           *http.ServeMux
	patterns                      []string // every pattern of mux
	literal                       literalRoutes
	lastSeen                      *lastseen.Recorder
	keys                          AccessKeyOptions
	keyUse                        *lastseen.Recorder
	clock                         func() time.Time
	decisions                     *decisionlog.Logger
	accessLog                     *accesslog.Logger
}

// New builds the API handler with its full middleware chain.
func New(o Options) http.Handler {
	s := newServer(o)
	s.routes()
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = s.authorize(h) // ask the decision point about the identified caller
	h = s.identify(h)  // establish the caller
	// 405 for a method the router does not serve on a known path, before
	// anyone is identified or asked
	h = s.checkMethod(h)
	h = limitBody(h)
	h = s.observe(h)
	h = s.canonicalize(h)
	h = s.recoverPanics(h)
	return withRequestID(h)
}

// newServer holds the dependencies; New adds the routes and middleware.
func newServer(o Options) *Server {
	s := &Server{cfg: o.Config, store: o.Store, roles: o.Roles, health: o.Health, metrics: o.Metrics,
		log: o.Logger, pdp: o.PDP, localPDP: o.LocalPDP, bundle: o.Bundle, idp: o.IdP, propagation: o.Propagation,
		propagationTimeout: o.PropagationTimeout, hardening: o.Hardening, mux: http.NewServeMux(), lastSeen: o.LastSeen,
		signingKeys: o.SigningKeys, keys: o.AccessKeys, keyUse: o.KeyUse, clock: o.Clock}
	s.endpointPDP = pdp.ForRepeatedQuestions(s.pdp)
	if s.localPDP != nil {
		s.endpointLocalPDP = pdp.ForRepeatedQuestions(s.localPDP)
	}
	s.decisions = o.DecisionLog
	s.accessLog = o.AccessLog
	if s.propagationTimeout <= 0 {
		s.propagationTimeout = 30 * time.Second
	}
	s.ident = authn.NewIdentifier(authn.IdentifierConfig{Enabled: o.Config.Auth.Enabled,
		Production: o.Config.ProductionMode(), TrustedProxies: o.Config.Auth.TrustedProxyPrefixes(), Tokens: o.Tokens})
	return s
}

func (s *Server) handle(pattern string, h handlerFunc) { s.handleHTTP(pattern, s.serve(h)) }

// handleHTTP registers h on the router, and pattern in s.patterns and,
// without wildcards, in s.literal.
func (s *Server) handleHTTP(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h) // panics on a conflict, as at any registration
	s.patterns = append(s.patterns, pattern)
	s.literal.add(pattern, h)
}

// literalRoutes are the router's patterns without wildcards, by path and
// method ("" for a pattern without one), so that a request for exactly
// such a path is routed with two map lookups. Only the router decides
// anything else.
type literalRoutes map[string]map[string]literalRoute

type literalRoute struct {
	pattern string
	handler http.Handler
}

func (l *literalRoutes) add(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	// A wildcard, a trailing slash (a prefix match) or a host makes the
	// router's matching more than equality.
	if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "{}%") {
		return
	}
	if *l == nil {
		*l = literalRoutes{}
	}
	if (*l)[path] == nil {
		(*l)[path] = map[string]literalRoute{}
	}
	(*l)[path][method] = literalRoute{pattern: pattern, handler: h}
}

// match is ServeMux.Handler's answer for r when r's escaped path is a
// literal pattern's path. The router refuses conflicting patterns, so
// no pattern with a wildcard can be more specific than a literal one on
// its own path: the method's pattern wins, then GET's for HEAD, then
// the pattern without a method. ok is false when the router must
// decide.
func (l literalRoutes) match(r *http.Request) (h http.Handler, pattern string, ok bool) {
	byMethod := l[r.URL.EscapedPath()]
	if byMethod == nil {
		return nil, "", false
	}
	rt, ok := byMethod[r.Method]
	if !ok && r.Method == http.MethodHead {
		rt, ok = byMethod[http.MethodGet]
	}
	if !ok {
		rt, ok = byMethod[""]
	}
	return rt.handler, rt.pattern, ok
}

// route is the router's match for r: the handler and its pattern ("" when
// none matches).
func (s *Server) route(r *http.Request) (http.Handler, string) {
	if h, pattern, ok := s.literal.match(r); ok {
		return h, pattern
	}
	return s.mux.Handler(r)
}

func (s *Server) routes() {
	s.handle("GET /health/live", s.live)
	s.handle("GET /health/ready", s.ready)
	s.handle("GET /status", s.status)
	s.handle("GET /cluster-info", s.clusterInfo)
	s.handleHTTP("GET /metrics", s.metrics.Handler())
	s.handle("GET /apis/auth/discovery", s.discovery)
	s.handle("GET /apis/auth/jwks", s.jwks)
	s.handle("/apis/auth/authenticate", s.authenticateCallout)
	s.handle("/apis/auth/authenticate/{rest...}", s.authenticateCallout)

	const auth = "/apis/auth/v2"
	s.handle("POST "+auth+"/authz/{entrypoint}", s.pdpQuery)
	s.handle("POST "+auth+"/self-check", s.selfCheck)
	s.handle("GET "+auth+"/iam/role-bindings", s.listRoleBindings)
	s.handle("POST "+auth+"/iam/role-bindings", s.createRoleBinding)
	s.handle("GET "+auth+"/iam/role-bindings/{name}", s.getRoleBinding)
	s.handle("DELETE "+auth+"/iam/role-bindings/{name}", s.deleteRoleBinding)
	s.handle("GET "+BundlePath, s.opaBundle)
	s.handle("GET "+HardeningPath, s.hardeningReport)
	s.accessKeyRoutes()
	s.handle("GET "+AuditEventsPath, s.listAuditEvents)

	const ws = EntitiesPrefix + "/workspaces"
	s.handle("GET "+ws, s.listWorkspaces)
	s.handle("POST "+ws, s.createWorkspace)
	s.handle("GET "+ws+"/{name}", s.getWorkspace)
	s.handle("PUT "+ws+"/{name}", s.updateWorkspace)
	s.handle("DELETE "+ws+"/{name}", s.deleteWorkspace)

	s.handle("GET "+ws+"/{workspace}/members", s.listMembers)
	s.handle("POST "+ws+"/{workspace}/members", s.addMember)
	s.handle("PUT "+ws+"/{workspace}/members/{principal}", s.updateMember)
	s.handle("DELETE "+ws+"/{workspace}/members/{principal}", s.removeMember)

	s.handle("GET "+ws+"/{workspace}/projects", s.listProjects)
	s.handle("POST "+ws+"/{workspace}/projects", s.createProject)
	s.handle("GET "+ws+"/{workspace}/projects/{name}", s.getProject)
	s.handle("PUT "+ws+"/{workspace}/projects/{name}", s.updateProject)
	s.handle("DELETE "+ws+"/{workspace}/projects/{name}", s.deleteProject)

	s.handle("GET "+ws+"/{workspace}/entities/{type}", s.listEntities)
	s.handle("POST "+ws+"/{workspace}/entities/{type}", s.createEntity)
	s.handle("GET "+ws+"/{workspace}/entities/{type}/{name}", s.getEntity)
	s.handle("PUT "+ws+"/{workspace}/entities/{type}/{name}", s.updateEntity)
	s.handle("DELETE "+ws+"/{workspace}/entities/{type}/{name}", s.deleteEntity)
	s.handle("GET "+EntitiesPrefix+"/entities/{id}", s.getEntityByID)
}
