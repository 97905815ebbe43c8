// Package metrics defines the Prometheus metrics of the server on a
// private registry (no global state, so tests can run servers side by side).
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's collectors.
type Metrics struct {
	registry       *prometheus.Registry
	HTTPRequests   *prometheus.CounterVec
	PolicyRevision prometheus.Gauge
	// AuthzDecisions counts PDP decisions by outcome and reason.
	AuthzDecisions *prometheus.CounterVec
	// PolicySyncFailures counts failed attempts to bring the policy
	// engine up to the store's revision.
	PolicySyncFailures prometheus.Counter
	// PolicyFullLoads counts full loads of every binding.
	PolicyFullLoads prometheus.Counter
	// PolicyMissedChanges counts safety-net checks that found changes no
	// notice had announced.
	PolicyMissedChanges prometheus.Counter
	// PolicyFeedInterruptions counts interruptions of the change feed.
	PolicyFeedInterruptions prometheus.Counter
	// TokenValidationFailures counts refused bearer tokens by reason.
	TokenValidationFailures *prometheus.CounterVec
	// Overloaded counts requests refused because the listener already
	// served service.max_concurrent_requests requests.
	Overloaded prometheus.Counter

	// Requests and Decisions are HTTPRequests and AuthzDecisions through
	// a CounterCache: what the request path increments.
	Requests  *CounterCache[RequestKey]
	Decisions *CounterCache[DecisionKey]
}

// RequestKey is a series of nmp_http_requests_total: the method label
// (a bounded set), the route pattern and the status code.
type RequestKey struct {
	Method, Route string
	Code          int
}

// DecisionKey is a series of nmp_authz_decisions_total.
type DecisionKey struct {
	Allowed bool
	Reason  string
}

// New registers the collectors on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nmp_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		PolicyRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nmp_policy_revision",
			Help: "Policy revision (role-binding changes) last seen by this process.",
		}),
	}
	m.AuthzDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nmp_authz_decisions_total",
		Help: "Authorization decisions of the request pipeline by outcome and PDP reason.",
	}, []string{"allowed", "reason"})
	m.PolicySyncFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_policy_sync_failures_total",
		Help: "Failed attempts to bring the policy engine up to the store's revision (the last good snapshot stays in use; retried with backoff).",
	})
	m.PolicyFullLoads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_policy_full_loads_total",
		Help: "Full loads of every role binding (start, change-feed reconnects, gaps).",
	})
	m.PolicyMissedChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_policy_missed_changes_total",
		Help: "Safety-net checks that found policy changes no change notice had announced.",
	})
	m.PolicyFeedInterruptions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_policy_feed_interruptions_total",
		Help: "Interruptions of the policy change feed (PostgreSQL LISTEN connection lost).",
	})
	m.TokenValidationFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nmp_token_validation_failures_total",
		Help: "Bearer tokens refused, by reason (expired, bad_signature, unknown_issuer, ...).",
	}, []string{"reason"})
	m.Overloaded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_http_overloaded_total",
		Help: "Requests refused with 503 overloaded because service.max_concurrent_requests were being served.",
	})
	m.Requests = NewCounterCache(m.HTTPRequests, func(k RequestKey) []string {
		return []string{k.Method, k.Route, strconv.Itoa(k.Code)}
	})
	m.Decisions = NewCounterCache(m.AuthzDecisions, func(k DecisionKey) []string {
		return []string{strconv.FormatBool(k.Allowed), k.Reason}
	})
	m.registry.MustRegister(m.HTTPRequests, m.PolicyRevision, m.AuthzDecisions, m.PolicySyncFailures, m.PolicyFullLoads,
		m.PolicyMissedChanges, m.PolicyFeedInterruptions, m.TokenValidationFailures, m.Overloaded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry exposes the registry for collectors added by other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
