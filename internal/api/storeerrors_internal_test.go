package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
)

// TestStoreFailureStatuses: an unreachable store is 503 store_unavailable
// with Retry-After, a full disk is 507 insufficient_storage, and neither
// is a 500.
func TestStoreFailureStatuses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{"unavailable", fmt.Errorf("list projects: %w", fmt.Errorf("%w: dial tcp: connection refused", store.ErrUnavailable)), 503, "store_unavailable", true},
		{"disk full", fmt.Errorf("%w: database or disk is full", store.ErrInsufficientStorage), 507, "insufficient_storage", false},
		{"other", errors.New("boom"), 500, "internal_error", false},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest(http.MethodGet, "/", nil), tt.err)
			var body struct{ Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || body.Code != tt.code {
				t.Errorf("got %d %q, want %d %q", w.Code, body.Code, tt.status, tt.code)
			}
			if got := w.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After present %v, want %v", got, tt.retryAfter)
			}
		})
	}
}
