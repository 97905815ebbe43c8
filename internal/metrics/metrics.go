// Package metrics defines the Prometheus metrics of the server on a
// private registry (no global state, so tests can run servers side by side).
package metrics

import (
	"net/http"

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
	// PolicyReloadFailures counts failed policy loads.
	PolicyReloadFailures prometheus.Counter
	// TokenValidationFailures counts refused bearer tokens by reason.
	TokenValidationFailures *prometheus.CounterVec
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
	m.PolicyReloadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nmp_policy_reload_failures_total",
		Help: "Policy loads that failed (the last good snapshot stays in use).",
	})
	m.TokenValidationFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nmp_token_validation_failures_total",
		Help: "Bearer tokens refused, by reason (expired, bad_signature, unknown_issuer, ...).",
	}, []string{"reason"})
	m.registry.MustRegister(m.HTTPRequests, m.PolicyRevision, m.AuthzDecisions, m.PolicyReloadFailures, m.TokenValidationFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry exposes the registry for collectors added by other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
