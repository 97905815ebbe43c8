package api

import (
	"errors"
	"net/http"
	"time"

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
	s.extendWriteDeadline(w, r)
	err := s.bundle.Serve(w, r)
	if errors.Is(err, bundle.ErrNotLoaded) {
		w.Header().Set("Retry-After", "1")
		return apierror.New(http.StatusServiceUnavailable, "policy_not_loaded", "Policy data is not loaded yet")
	}
	return err
}

// extendWriteDeadline lets a long-polling bundle request (Prefer wait)
// wait its whole wait and still have service.write_timeout_seconds to
// write the answer: the listener's write deadline otherwise runs from the
// end of the request headers and could cut a wait longer than it.
func (s *Server) extendWriteDeadline(w http.ResponseWriter, r *http.Request) {
	timeout := time.Duration(s.cfg.Service.WriteTimeoutSeconds) * time.Second
	wait, ok := bundle.PreferWait(r.Header.Values("Prefer"))
	if timeout <= 0 || !ok {
		return
	}
	// ErrNotSupported (a writer that is not a connection) leaves the
	// deadline as it is.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + timeout))
}
