package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/store"
)

// handlerFunc is an HTTP handler that returns its error; one place (serve)
// renders every error as {"detail", "code"}.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// toAPIError maps any error to the error the client sees. Unexpected
// errors become a generic 500 and never leak their text.
func toAPIError(err error) (*apierror.Error, bool) {
	var ae *apierror.Error
	if errors.As(err, &ae) {
		return ae, true
	}
	var se *store.Error
	if errors.As(err, &se) {
		status := map[store.Kind]int{
			store.KindNotFound: http.StatusNotFound,
			store.KindConflict: http.StatusConflict,
			store.KindInvalid:  http.StatusUnprocessableEntity,
		}[se.Kind]
		return &apierror.Error{Status: status, Code: se.Code, Detail: se.Detail}, true
	}
	if errors.Is(err, store.ErrUnavailable) {
		return apierror.New(http.StatusServiceUnavailable, "store_unavailable", "The entity store is unavailable; retry later"), true
	}
	if errors.Is(err, store.ErrInsufficientStorage) {
		return apierror.New(http.StatusInsufficientStorage, "insufficient_storage", "The entity store is out of storage; the change was not made"), true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "Request body is larger than %d bytes", mbe.Limit), true
	}
	return apierror.New(http.StatusInternalServerError, "internal_error", "Internal server error"), false
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae, expected := toAPIError(err)
	if !expected {
		s.log.ErrorContext(r.Context(), "request failed", "error", err, "request_id", requestID(r.Context()))
	}
	if ae.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	if ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusInsufficientStorage {
		s.log.DebugContext(r.Context(), "request refused: a dependency is unavailable or out of storage", "status", ae.Status, "error", err, "request_id", requestID(r.Context()))
	}
	if ae.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	writeJSON(w, ae.Status, ae.Body())
}

// jsonContentType is the Content-Type of every JSON answer, shared by
// them (nothing modifies a header's value slice in place; Set and Add
// replace it), so that setting it allocates nothing.
var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "error", err)
	}
}

// pageBody renders a store page with its normalized sort and filter.
func pageBody[T any](p store.Page[T], sort string, filter map[string]map[string]any) map[string]any {
	var f any
	if filter != nil {
		f = filter
	}
	return map[string]any{
		"data": p.Items,
		"pagination": map[string]int{
			"page": p.Page, "page_size": p.PageSize, "current_page_size": len(p.Items),
			"total_pages": p.TotalPages(), "total_results": p.TotalResults,
		},
		"sort":   sort,
		"filter": f,
	}
}
