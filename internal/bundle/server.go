package bundle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/policysync"
)

// ContentType is the media type of a bundle response; OPA takes it as the
// sign that the server supports long polling.
const ContentType = "application/vnd.openpolicyagent.bundles"

// Source is the policy a bundle is built from (*authz.Engine).
type Source interface {
	// Loaded reports whether bindings have been loaded; before that no
	// bundle is built (it would hold no principals).
	Loaded() bool
	// Revision is the current policy revision (cheap, no copy).
	Revision() int64
	// BundleData returns data.authz and the revision it holds, read from
	// one snapshot.
	BundleData() (revision int64, data map[string]any)
}

// ErrNotLoaded: the policy's bindings are not loaded yet, so there is no
// bundle to serve.
var ErrNotLoaded = errors.New("policy bindings not loaded yet")

// Changes tells when the policy changes (*policysync.Syncer): Wait returns
// nil once cond holds, re-checking it at every change of the syncer's
// state, or ctx's error.
type Changes interface {
	Wait(ctx context.Context, cond func(policysync.Status) bool) error
}

// Options configure a Server.
type Options struct {
	Source Source
	// Changes lets long-polling requests wait for the next revision
	// (nil: every request is answered at once).
	Changes Changes
	// CacheSeconds is the max-age of 200 and 304 responses.
	CacheSeconds int
	// Registerer receives the bundle metrics (nil: not exported).
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Server builds bundles on demand, caches the latest one and answers
// bundle requests, long-polling ones included. It is safe for concurrent
// use.
type Server struct {
	src          Source
	changes      Changes
	cacheControl string
	log          *slog.Logger

	mu     sync.Mutex
	cur    *Bundle // the newest bundle built
	flight *flight // the build under way, if any

	// closing ends every wait when the server shuts down.
	closing context.Context
	close   context.CancelFunc

	builds       prometheus.Counter
	buildSeconds prometheus.Gauge
	size         prometheus.Gauge
	waiters      prometheus.Gauge
	responses    *prometheus.CounterVec
}

// flight is one build; done is closed when b or err is set.
type flight struct {
	done chan struct{}
	b    *Bundle
	err  error
}

// New returns a Server; nothing is built until the first request.
func New(o Options) *Server {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{src: o.Source, changes: o.Changes, log: log,
		cacheControl: "max-age=" + strconv.Itoa(max(o.CacheSeconds, 0)) + ", must-revalidate",
		builds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nmp_bundle_builds_total",
			Help: "OPA bundles built (one per policy revision requested).",
		}),
		buildSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nmp_bundle_build_seconds",
			Help: "Duration of the last OPA bundle build.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nmp_bundle_size_bytes",
			Help: "Size of the last OPA bundle built (tar.gz bytes).",
		}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nmp_bundle_waiters",
			Help: "Long-polling OPA bundle requests waiting for the next policy revision.",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nmp_bundle_responses_total",
			Help: "OPA bundle responses by status code (200 bundle, 304 not modified, 503 policy not loaded, 500 build failed).",
		}, []string{"code"}),
	}
	s.closing, s.close = context.WithCancel(context.Background())
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.builds, s.buildSeconds, s.size, s.waiters, s.responses)
	}
	return s
}

// Close ends every long-polling wait at once (each answers 304, as at its
// deadline), so that a graceful shutdown is not held up by them. Requests
// after Close are answered without waiting.
func (s *Server) Close() { s.close() }

// Current returns the bundle of the current revision, building it unless
// it is cached. One build runs at a time: concurrent callers wait for it
// (a caller whose ctx ends stops waiting; the build goes on for the
// others). Build errors are returned and not cached.
func (s *Server) Current(ctx context.Context) (*Bundle, error) {
	if !s.src.Loaded() {
		return nil, ErrNotLoaded
	}
	rev := s.src.Revision()
	for {
		s.mu.Lock()
		if s.cur != nil && s.cur.Revision >= rev { // revisions never go back
			b := s.cur
			s.mu.Unlock()
			return b, nil
		}
		f, mine := s.flight, false
		if f == nil {
			f, mine = &flight{done: make(chan struct{})}, true
			s.flight = f
			go s.build(f)
		}
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		if mine || f.b.Revision >= rev {
			return f.b, nil
		}
		// The build joined was of an older revision: build again.
	}
}

func (s *Server) build(f *flight) {
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			f.b, f.err = nil, fmt.Errorf("bundle build panicked: %v", v)
		}
		s.mu.Lock()
		if f.err == nil && (s.cur == nil || f.b.Revision >= s.cur.Revision) {
			s.cur = f.b
		}
		s.flight = nil
		s.mu.Unlock()
		// Recorded before the waiters are released, so that whoever got
		// this bundle also sees it counted.
		if f.err != nil {
			s.log.Error("OPA bundle build failed", "error", f.err)
		} else {
			d := time.Since(start)
			s.builds.Inc()
			s.buildSeconds.Set(d.Seconds())
			s.size.Set(float64(len(f.b.Bytes)))
			s.log.Info("OPA bundle built", "revision", f.b.Revision, "bytes", len(f.b.Bytes), "duration_ms", d.Milliseconds())
		}
		close(f.done)
	}()
	f.b, f.err = Build(s.src.BundleData())
}

// Serve answers GET or HEAD of the bundle: 200 with the bundle of the
// current revision, or 304 when If-None-Match matches its ETag. With a
// Prefer wait=<s> (≤ 300 s) and a match, it first waits until the
// revision changes (then 200 with the new bundle) or the wait ends (304).
// A client that goes away ends the wait at once. It returns an
// error (ErrNotLoaded, or a build failure) only when there is no bundle to
// serve; nothing is written then.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := s.Current(ctx)
	if err != nil {
		return s.failed(ctx, w, err)
	}
	if NoneMatch(strings.Join(r.Header.Values("If-None-Match"), ","), b.ETag) {
		wait, ok := PreferWait(r.Header.Values("Prefer"))
		if !ok || s.changes == nil || !s.await(ctx, b.Revision, wait) {
			// Never an empty 200: even when the context ended, answer
			// 304 (a write to a client that went away fails harmlessly).
			s.notModified(w, b, ctx.Err() == nil)
			return nil
		}
		if b, err = s.Current(ctx); err != nil {
			return s.failed(ctx, w, err)
		}
	}
	h := w.Header()
	h.Set("ETag", b.ETag)
	h.Set("Cache-Control", s.cacheControl)
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b.Bytes)))
	w.WriteHeader(http.StatusOK)
	s.responses.WithLabelValues("200").Inc()
	if r.Method != http.MethodHead {
		if _, err := w.Write(b.Bytes); err != nil {
			s.log.DebugContext(ctx, "OPA bundle response not fully written", "error", err)
		}
	}
	return nil
}

// failed handles a request without a bundle: when its context ended (the
// client went away), a bare 503 rather than net/http's empty 200; else the
// error for the caller to render.
func (s *Server) failed(ctx context.Context, w http.ResponseWriter, err error) error {
	if ctx.Err() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return nil
	}
	s.countFailure(err)
	return err
}

func (s *Server) countFailure(err error) {
	code := "500"
	if errors.Is(err, ErrNotLoaded) {
		code = "503"
	}
	s.responses.WithLabelValues(code).Inc()
}

// notModified answers 304; count is false when the client already went
// away (not counted as a response).
func (s *Server) notModified(w http.ResponseWriter, b *Bundle, count bool) {
	w.Header().Set("ETag", b.ETag)
	w.Header().Set("Cache-Control", s.cacheControl)
	w.WriteHeader(http.StatusNotModified)
	if count {
		s.responses.WithLabelValues("304").Inc()
	}
}

// await waits, at most wait, until the policy revision is no longer rev.
// It reports whether it changed. The wait costs the calling goroutine, a
// timer and the syncer's broadcast channel: no goroutine, no store access.
// It ends early when ctx ends (the client went away) or at Close.
func (s *Server) await(ctx context.Context, rev int64, wait time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	s.waiters.Inc()
	defer s.waiters.Dec()
	return s.changes.Wait(wctx, func(policysync.Status) bool { return s.src.Revision() != rev }) == nil
}
