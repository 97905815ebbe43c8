package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/policysync"
)

// HardeningPath is the server's hardening report.
const HardeningPath = "/apis/auth/v2/hardening"

// HardeningOptions is what GET /apis/auth/v2/hardening needs besides the
// rest of Options. The zero value works: built-in roles, a default probe
// client, the system clock, and no last-seen times.
type HardeningOptions struct {
	// Roles are the policy document's roles (to rank roles against
	// Editor); nil: the built-in roles.
	Roles map[string]authz.Role
	// Client probes the OIDC issuers; nil: a default client.
	Client *http.Client
	// Now is the clock (secret file ages, stale members); nil: time.Now.
	Now func() time.Time
	// StaleMembers lists the members not seen since a time, per
	// workspace; nil: the stale-members finding is unknown.
	StaleMembers hardening.StaleMembersFunc
}

// policyComponents are the health components of the policy decision point.
var policyComponents = []string{policysync.HealthPolicy, policysync.HealthFeed, pdp.HealthComponent}

// hardeningReport answers the server's production-hardening findings. Who
// may call it is decided by the PDP like any other request (the endpoint
// map gives it a permission no built-in role holds: PlatformAdmin only).
func (s *Server) hardeningReport(w http.ResponseWriter, r *http.Request) error {
	checks := hardening.ServerChecks{Config: s.cfg, Bindings: s.store, Roles: s.hardening.Roles,
		PDP: s.pdpStatus(), Client: s.hardening.Client, Now: s.hardening.Now, StaleMembers: s.hardening.StaleMembers}
	writeJSON(w, http.StatusOK, checks.Report(r.Context()))
	return nil
}

// pdpStatus is the provider, the not-ready reasons of the policy
// components and the applied revision.
func (s *Server) pdpStatus() hardening.PDPStatus {
	st := hardening.PDPStatus{Provider: s.cfg.Auth.PolicyDecisionPointProvider}
	if _, reasons := s.health.Ready(); len(reasons) > 0 {
		for _, reason := range reasons {
			for _, c := range policyComponents {
				if strings.HasPrefix(reason, c+":") || strings.HasPrefix(reason, c+" ") {
					st.Problems = append(st.Problems, reason)
					break
				}
			}
		}
	}
	if s.propagation != nil {
		st.Revision = s.propagation.Status().Applied
	}
	return st
}
