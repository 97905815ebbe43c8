package api

import (
	"context"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// reqInfo is per-request state shared by the middleware stages.
type reqInfo struct {
	id string
	// preauthorized: a trusted gateway already authorized the request
	// (set by identify, read by authorize).
	preauthorized bool
	// handler and pattern are what the router matched (set by observe;
	// pattern "" when nothing did): dispatch serves them without
	// matching again.
	handler http.Handler
	pattern string
	// identified: identify established the caller, caller (nil when
	// anonymous); the request context answers authn.FromContext and
	// store.AuditActorFrom from them, and observe logs the caller's id.
	identified bool
	caller     *authn.Principal
}

type infoKey struct{}

func info(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// requestContext is a request's context: its parent's, plus the request's
// state (reqInfo), which answers the request id, and once the caller is
// identified the principal and the audit actor. identify then records
// the caller in it instead of deriving a context and a request from each
// value.
type requestContext struct {
	context.Context
	ri *reqInfo
}

func (c *requestContext) Value(key any) any {
	switch key.(type) {
	case infoKey:
		return c.ri
	case authn.PrincipalKey:
		if c.ri.identified {
			return c.ri.caller
		}
	case store.AuditActorKey:
		if c.ri.identified {
			return auditActor(c.ri.caller, c.ri.id)
		}
	}
	return c.Context.Value(key)
}

func requestID(ctx context.Context) string { return info(ctx).id }

// withRequestID echoes a client X-Request-Id of 1-128 printable ASCII
// characters, else generates one, and sets it on the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !printableID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(&requestContext{Context: r.Context(), ri: &reqInfo{id: id}}))
	})
}

// newRequestID is a random (version 4) UUID. Request ids correlate log
// lines and audit events; they are not secrets, so the bits come from
// math/rand/v2's per-thread ChaCha8 generator (seeded by the runtime from
// the system's randomness) rather than a system call per request.
func newRequestID() string {
	var u uuid.UUID
	binary.LittleEndian.PutUint64(u[:8], mrand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], mrand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

func printableID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) canonicalize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		escaped := r.URL.EscapedPath()
		p, ok := authz.CanonicalPath(escaped)
		if !ok {
			s.writeError(w, r, apierror.BadRequest("invalid_input", "Invalid request path"))
			return
		}
		if p == escaped { // already canonical: Path and RawPath stand as they are
			next.ServeHTTP(w, r)
			return
		}
		u, err := url.Parse(p)
		if err != nil {
			s.writeError(w, r, apierror.BadRequest("invalid_input", "Invalid request path"))
			return
		}
		r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			ae := apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "Request body is larger than %d bytes", MaxBodyBytes)
			writeJSON(w, ae.Status, ae.Body())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe counts the request by route and hands it to the access log,
// which keeps it (sampled when successful) without delaying the request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		ri := info(r.Context())
		// The route is known before identify and authorize run, so that a
		// request they refuse is counted under its route too. The match
		// is kept for dispatch: the router matches each request once.
		ri.handler, ri.pattern = s.route(r)
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := routeLabel(ri.pattern)
		if route == "" {
			route = "unmatched"
		}
		s.metrics.Requests.Inc(metrics.RequestKey{Method: methodLabel(r.Method), Route: route, Code: sw.status})
		if !s.accessLog.Enabled(sw.status) {
			return
		}
		e := accesslog.Entry{Time: start, RequestID: ri.id, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Status: sw.status, Duration: time.Since(start), RemoteAddr: r.RemoteAddr}
		if ri.caller != nil {
			e.Principal = ri.caller.ID
		}
		s.accessLog.Record(e)
	})
}

// checkMethod answers 405 method_not_allowed, with Allow, to a method the
// router does not serve on a path it knows, before the caller is
// identified or authorized: the same answer for anonymous and
// authenticated callers, auth on or off. Unknown paths go on (identify,
// authorize, then 404 in dispatch). The gateway callout accepts any method
// and decides about other services' paths, never this router's.
func (s *Server) checkMethod(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow, ok := s.methodNotAllowed(r); ok {
			w.Header().Set("Allow", allow)
			s.writeError(w, r, apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "Method %s is not allowed on %s; allowed: %s",
				r.Method, r.URL.EscapedPath(), allow))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed reports whether the router knows the path but not the
// method, with the Allow header the router would send.
func (s *Server) methodNotAllowed(r *http.Request) (allow string, ok bool) {
	if info(r.Context()).pattern != "" { // observe matched a pattern: method and path are served
		return "", false
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		return "", false
	}
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusMethodNotAllowed {
		return "", false
	}
	return rec.header.Get("Allow"), true
}

// dispatch routes the request, recording the matched pattern, and renders
// unknown routes as JSON errors.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	// observe matched the route on the same method and canonical path
	// (nothing after it changes them).
	ri := info(r.Context())
	if ri.pattern == "" { // checkMethod answered unknown methods on known paths
		s.writeError(w, r, apierror.New(http.StatusNotFound, "not_found", "Not Found"))
		return
	}
	if err := checkWaitParam(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	// what ServeMux.ServeHTTP would do after its match
	r.Pattern = ri.pattern
	setPathValues(r, ri.pattern)
	ri.handler.ServeHTTP(w, r)
}

// routeLabel is a ServeMux pattern without its method ("" when none
// matched): a metric label from a fixed set, whatever the path.
func routeLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// setPathValues sets the wildcards of pattern, a pattern of the router
// that matched r, to their values in r's escaped path, as the router
// does: each {name} the percent-decoded segment at its place, a final
// {name...} the decoded rest of the path. The server's paths are
// canonical (no empty segment, no trailing slash), so segments line up.
// TestSetPathValuesAsServeMux compares it with the router on every
// pattern.
func setPathValues(r *http.Request, pattern string) {
	p := routeLabel(pattern)
	path := r.URL.EscapedPath()
	for p != "" && path != "" {
		var pseg, seg string
		pseg, p = nextSegment(p)
		if name, ok := strings.CutPrefix(pseg, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			if name, ok := strings.CutSuffix(name, "..."); ok {
				r.SetPathValue(name, pathUnescape(path[1:]))
				return
			}
			seg, path = nextSegment(path)
			r.SetPathValue(name, pathUnescape(seg))
			continue
		}
		_, path = nextSegment(path)
	}
}

// nextSegment splits "/seg/rest" into "seg" and "/rest".
func nextSegment(path string) (seg, rest string) {
	path = path[1:]
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i:]
	}
	return path, ""
}

// pathUnescape decodes a segment as the router does (an invalid escape
// leaves it as it is; the server's paths have none).
func pathUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// methodLabel is the request method as a metric label: one of the
// methods the API knows, else "other" (a client chooses the method, and
// must not create label values at will).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

// headerRecorder captures what the ServeMux's own 404/405 handler writes.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.status = code }

// BundlePath is the canonical path of the OPA bundle.
const BundlePath = "/apis/auth/v2/iam/opa-bundle.tar.gz"

// decisionPointFor is the decision point the authorize middleware asks
// about a request to the canonical escaped path (for its caller's right
// to call the endpoint, a question that recurs: see
// pdp.ForRepeatedQuestions): the in-process evaluator
// for the OPA bundle (any method), because an external OPA cannot
// authorize the fetch of its own first bundle; the configured one for
// everything else.
func (s *Server) decisionPointFor(path string) pdp.DecisionPoint {
	if s.localPDP != nil && isBundlePath(path) {
		return s.endpointLocalPDP
	}
	return s.endpointPDP
}

// isBundlePath compares segment by segment after percent-decoding each
// one, as the policy matches paths (so %2F never splits a segment).
// It allocates only to decode a segment that holds an escape (the PDP
// entrypoints' paths have as many segments as the bundle's).
func isBundlePath(escaped string) bool {
	if strings.Count(escaped, "/") != strings.Count(BundlePath, "/") {
		return false // another number of segments
	}
	want := BundlePath
	for escaped != "" || want != "" {
		var got, seg string
		got, escaped, _ = strings.Cut(escaped, "/")
		seg, want, _ = strings.Cut(want, "/")
		if got == seg {
			continue // BundlePath holds no escape: equal means equal once decoded
		}
		if strings.IndexByte(got, '%') < 0 {
			return false
		}
		if d, err := url.PathUnescape(got); err != nil || d != seg {
			return false
		}
	}
	return true
}
