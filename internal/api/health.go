package api

import (
	"net/http"

	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/version"
)

func (s *Server) live(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "live"})
	return nil
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) error {
	if ok, reasons := s.health.Ready(); !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reasons": reasons})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) error {
	services := []string{"auth", "entities"}
	ready, notReady := services, []map[string]string{}
	status := "healthy"
	if ok, reasons := s.health.Ready(); !ok {
		status, ready = "degraded", []string{}
		for _, svc := range services {
			for _, reason := range reasons {
				notReady = append(notReady, map[string]string{"name": svc, "message": reason})
			}
		}
	}
	policy := map[string]any{"provider": s.cfg.Auth.PolicyDecisionPointProvider, "revision": nil,
		"last_full_reload": nil, "committed_revision": nil, "error": nil}
	if s.propagation != nil {
		ps := s.propagation.Status()
		policy["revision"], policy["committed_revision"] = ps.Applied, max(ps.Known, ps.Applied)
		if !ps.LastFullLoad.IsZero() {
			policy["last_full_reload"] = store.NewTimestamp(ps.LastFullLoad)
		}
		if ps.Err != nil {
			// The cause may name the database host and user: it is in
			// the server log, not on this public endpoint.
			policy["error"] = "the last policy refresh failed; the cause is in the server log"
		}
	}
	if rr, ok := s.pdp.(pdp.RemoteReporter); ok {
		policy["opa"] = remoteStatus(rr.Remote())
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":      status,
		"services":    map[string]any{"ready": ready, "not_ready": notReady},
		"controllers": map[string]any{"healthy": true, "status": map[string]any{}},
		"policy":      policy,
	})
	return nil
}

// remoteStatus renders the external OPA's last readiness check.
func remoteStatus(rs pdp.RemoteStatus) map[string]any {
	out := map[string]any{"ready": rs.Err == nil, "reachable": rs.Reachable, "revision": nil,
		"local_revision": rs.Local, "behind_since": nil, "checked_at": nil, "error": nil}
	if rs.HasRevision {
		out["revision"] = rs.Revision
	}
	if !rs.BehindSince.IsZero() {
		out["behind_since"] = store.NewTimestamp(rs.BehindSince)
	}
	if !rs.CheckedAt.IsZero() {
		out["checked_at"] = store.NewTimestamp(rs.CheckedAt)
	}
	if rs.Err != nil {
		out["error"] = rs.Err.Error()
	}
	return out
}

func (s *Server) clusterInfo(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "nmp", "version": version.Version, "services": []string{"auth", "entities"},
		"auth_enabled": s.cfg.Auth.Enabled, "base_url": s.cfg.Platform.BaseURL,
	})
	return nil
}
