package server

import (
	"encoding/json"
	"net/http"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/metrics"
)

// probePaths are never refused for overload: a liveness or readiness
// probe must answer while the server is busy (they are cheap and touch
// neither the store nor the decision point).
var probePaths = map[string]bool{"/health/live": true, "/health/ready": true}

// limitConcurrency serves at most limit requests at once (0: unlimited);
// a request beyond it is answered at once with 503 overloaded and
// Retry-After: 1, and counted in m.Overloaded, rather than queued.
func limitConcurrency(next http.Handler, limit int, m *metrics.Metrics) http.Handler {
	if limit <= 0 {
		return next
	}
	slots := make(chan struct{}, limit)
	body, _ := json.Marshal(apierror.New(http.StatusServiceUnavailable, "overloaded",
		"The server is serving as many requests as it allows (service.max_concurrent_requests); retry shortly").Body())
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if probePaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			m.Overloaded.Inc()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body) // the client may be gone; nothing to do
			return
		}
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}
