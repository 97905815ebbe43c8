package api

import (
	"errors"
	"net/http"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/bundle"
)

// opaBundle serves GET/HEAD /apis/auth/v2/iam/opa-bundle.tar.gz: the
// policy as an OPA bundle, with ETag, If-None-Match and long polling
// (internal/bundle). Who may read it was decided by the in-process
// evaluator (see decisionPointFor).
func (s *Server) opaBundle(w http.ResponseWriter, r *http.Request) error {
	if s.bundle == nil {
		return apierror.New(http.StatusNotFound, "not_found", "Not Found")
	}
	err := s.bundle.Serve(w, r)
	if errors.Is(err, bundle.ErrNotLoaded) {
		w.Header().Set("Retry-After", "1")
		return apierror.New(http.StatusServiceUnavailable, "policy_not_loaded", "Policy data is not loaded yet")
	}
	return err
}
