package bundle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// countingSource is the syncer's view of a real store, counting every
// read it makes.
type countingSource struct {
	*sqlstore.Store
	calls   atomic.Int64
	catchUp atomic.Int64 // BindingChanges calls that returned
}

func (c *countingSource) WatchPolicy(ctx context.Context, emit func(store.PolicyEvent)) error {
	c.calls.Add(1)
	return c.Store.WatchPolicy(ctx, emit)
}

func (c *countingSource) ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	c.calls.Add(1)
	return c.Store.ScanActiveBindings(ctx, fn)
}

func (c *countingSource) BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error) {
	c.calls.Add(1)
	defer c.catchUp.Add(1)
	return c.Store.BindingChanges(ctx, after)
}

func (c *countingSource) PolicyRevision(ctx context.Context) (int64, error) {
	c.calls.Add(1)
	return c.Store.PolicyRevision(ctx)
}

// fixture is a bundle server over a real engine kept current by a running
// policy syncer on a SQLite store, as in the platform process.
type fixture struct {
	st     *sqlstore.Store
	src    *countingSource
	engine *authz.Engine
	syncer *policysync.Syncer
	reg    *prometheus.Registry
	srv    *bundle.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := authztest.SeededStore(t)
	f := &fixture{st: st, src: &countingSource{Store: st}, engine: authztest.StaticEngine(t), reg: prometheus.NewRegistry()}
	f.syncer = policysync.New(policysync.Options{Engine: f.engine, Source: f.src, Log: slog.New(slog.DiscardHandler),
		Metrics: metrics.New(), Health: health.New(policysync.HealthPolicy, policysync.HealthFeed)})
	if err := f.syncer.Prime(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.syncer.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("syncer: %v", err)
		}
	})
	// Run starts with the feed's resync: a catch-up. Wait for it, so
	// that the syncer is idle from here on.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := f.syncer.Wait(wctx, func(policysync.Status) bool { return f.src.catchUp.Load() >= 1 }); err != nil {
		t.Fatalf("syncer did not start: %v", err)
	}
	f.srv = bundle.New(bundle.Options{Source: f.engine, Changes: f.syncer, CacheSeconds: 5, Registerer: f.reg})
	return f
}

// change commits a binding change (a new workspace with its Admin).
func (f *fixture) change(t *testing.T, name string) {
	t.Helper()
	if _, _, err := f.st.CreateWorkspace(context.Background(), store.NewWorkspace{Name: name, Admin: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
}

// get asks for the bundle with optional If-None-Match and Prefer values.
func (f *fixture) get(ctx context.Context, t *testing.T, method, inm, prefer string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, "/apis/auth/v2/iam/opa-bundle.tar.gz", nil)
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	if prefer != "" {
		req.Header.Set("Prefer", prefer)
	}
	rec := httptest.NewRecorder()
	if err := f.srv.Serve(rec, req); err != nil {
		t.Errorf("Serve: %v", err)
	}
	return rec
}

// metric reads a gauge or counter of the fixture's registry (0 if absent).
func (f *fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metricValue(t, f.reg, name, labels...)
}

// metricValue reads a gauge or counter with the given label pairs (0 if
// absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	next:
		for _, m := range fam.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling interval, not ordering
	}
}

func manifestRevision(t *testing.T, body []byte) string {
	t.Helper()
	entries := readArchive(t, body)
	var man struct{ Revision string }
	if err := json.Unmarshal(entries[0].data, &man); err != nil {
		t.Fatal(err)
	}
	return man.Revision
}

// TestConditionalRequests: a 200 carries the bundle with its ETag, cache
// and content headers; each If-None-Match form that names the ETag (or
// "*") gets a 304 with ETag and cache headers and no body; others a 200.
func TestConditionalRequests(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.get(ctx, t, "GET", "", "")
	tag := first.Header().Get("ETag")
	want, err := bundle.Build(f.engine.BundleData())
	if err != nil {
		t.Fatal(err)
	}
	if first.Code != 200 || tag != want.ETag || first.Body.String() != string(want.Bytes) ||
		first.Header().Get("Content-Type") != bundle.ContentType ||
		first.Header().Get("Cache-Control") != "max-age=5, must-revalidate" ||
		first.Header().Get("Content-Length") != fmt.Sprint(len(want.Bytes)) {
		t.Fatalf("first GET: %d %v (%d bytes), want the bundle %s", first.Code, first.Header(), first.Body.Len(), want.ETag)
	}
	if rev := manifestRevision(t, first.Body.Bytes()); rev != fmt.Sprint(f.engine.Revision()) {
		t.Fatalf("manifest revision %s, engine at %d", rev, f.engine.Revision())
	}
	if head := f.get(ctx, t, "HEAD", "", ""); head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("ETag") != tag {
		t.Fatalf("HEAD: %d %v %d bytes", head.Code, head.Header(), head.Body.Len())
	}
	opaque := tag[1 : len(tag)-1]
	cases := []struct {
		name string
		inm  string
		want int
	}{
		{"quoted", tag, 304},
		{"bare", opaque, 304},
		{"weak", "W/" + tag, 304},
		{"weak bare", "W/" + opaque, 304},
		{"star", "*", 304},
		{"in a list", `"old", ` + tag + `, W/"older"`, 304},
		{"list as OPA sends it after a change", tag + ", " + `"0000"`, 304},
		{"blank is absent", "   ", 200},
		{"other tag", `"0000"`, 200},
		{"quoted star", `"*"`, 200},
		{"truncated", `"` + opaque[:31] + `"`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.get(ctx, t, "GET", tc.inm, "")
			h := rec.Header()
			if rec.Code != tc.want || h.Get("ETag") != tag || h.Get("Cache-Control") != "max-age=5, must-revalidate" {
				t.Fatalf("If-None-Match %q: %d %v, want %d", tc.inm, rec.Code, h, tc.want)
			}
			if tc.want == 304 && (rec.Body.Len() != 0 || h.Get("Content-Type") != "") {
				t.Fatalf("304 with a body or content type: %d bytes, %v", rec.Body.Len(), h)
			}
			if tc.want == 200 && rec.Body.String() != string(want.Bytes) {
				t.Fatal("200 without the bundle")
			}
		})
	}
	// Two header lines are one list.
	req := httptest.NewRequest("GET", "/apis/auth/v2/iam/opa-bundle.tar.gz", nil)
	req.Header.Add("If-None-Match", `"0000"`)
	req.Header.Add("If-None-Match", tag)
	rec := httptest.NewRecorder()
	if err := f.srv.Serve(rec, req); err != nil || rec.Code != 304 {
		t.Fatalf("two If-None-Match lines: %d %v", rec.Code, err)
	}
	if b := f.metric(t, "nmp_bundle_builds_total"); b != 1 {
		t.Fatalf("%v builds for one revision", b)
	}
	if s := f.metric(t, "nmp_bundle_size_bytes"); s != float64(len(want.Bytes)) {
		t.Fatalf("size metric %v, want %d", s, len(want.Bytes))
	}
	if n := f.metric(t, "nmp_bundle_responses_total", "code", "304"); n != 8 {
		t.Fatalf("%v responses counted 304, want 8", n)
	}
}

// TestLongPoll: a matching long-polling request is held until the revision
// changes (200, the new bundle) or its wait ends (304); without a usable
// wait, or when the client's tag is stale, it is answered at once.
func TestLongPoll(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tag := f.get(ctx, t, "GET", "", "").Header().Get("ETag")
	rev := f.engine.Revision()

	t.Run("a change answers 200", func(t *testing.T) {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- f.get(ctx, t, "GET", tag, "modes=snapshot,delta;wait=60") }()
		eventually(t, "the request waits", func() bool { return f.metric(t, "nmp_bundle_waiters") == 1 })
		f.change(t, "ml-team")
		rec := <-done
		if rec.Code != 200 || rec.Header().Get("ETag") == tag || rec.Header().Get("Content-Type") != bundle.ContentType {
			t.Fatalf("after a change: %d %v", rec.Code, rec.Header())
		}
		if got := manifestRevision(t, rec.Body.Bytes()); got == fmt.Sprint(rev) || got != fmt.Sprint(f.engine.Revision()) {
			t.Fatalf("new bundle at revision %s (was %d, engine %d)", got, rev, f.engine.Revision())
		}
		if w := f.metric(t, "nmp_bundle_waiters"); w != 0 {
			t.Fatalf("%v waiters left", w)
		}
		tag = rec.Header().Get("ETag")
	})
	t.Run("the deadline answers 304", func(t *testing.T) {
		start := time.Now()
		rec := f.get(ctx, t, "GET", tag, "wait=1")
		if rec.Code != 304 || rec.Header().Get("ETag") != tag || rec.Body.Len() != 0 {
			t.Fatalf("at the deadline: %d %v", rec.Code, rec.Header())
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("answered after %v, before the 1 s wait ended", d)
		}
	})
	for _, prefer := range []string{"wait=0", "wait=soon", "wait=-3", "modes=snapshot"} {
		t.Run("answered at once with "+prefer, func(t *testing.T) {
			// A held request would outlive this deadline: the test's
			// context would end it and the recorder would stay empty.
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if rec := f.get(cctx, t, "GET", tag, prefer); rec.Code != 304 {
				t.Fatalf("Prefer %q: %d", prefer, rec.Code)
			}
		})
	}
	t.Run("a stale tag answers 200 at once", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if rec := f.get(cctx, t, "GET", `"stale"`, "wait=300"); rec.Code != 200 {
			t.Fatalf("stale tag: %d", rec.Code)
		}
	})
	t.Run("Close releases waiters", func(t *testing.T) {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- f.get(ctx, t, "GET", tag, "wait=300") }()
		eventually(t, "the request waits", func() bool { return f.metric(t, "nmp_bundle_waiters") == 1 })
		f.srv.Close()
		if rec := <-done; rec.Code != 304 {
			t.Fatalf("after Close: %d", rec.Code)
		}
		if rec := f.get(ctx, t, "GET", tag, "wait=300"); rec.Code != 304 {
			t.Fatalf("after Close, a new request: %d", rec.Code)
		}
	})
}

// TestClientDisconnectReleasesTheWaiter: over HTTP, a long-polling client
// that goes away ends its wait at once.
func TestClientDisconnectReleasesTheWaiter(t *testing.T) {
	f := newFixture(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f.srv.Serve(w, r); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}))
	t.Cleanup(hs.Close)
	tag := f.get(context.Background(), t, "GET", "", "").Header().Get("ETag")
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", tag)
	req.Header.Set("Prefer", "wait=300")
	done := make(chan error, 1)
	go func() {
		resp, err := hs.Client().Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		done <- err
	}()
	eventually(t, "the request waits", func() bool { return f.metric(t, "nmp_bundle_waiters") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	eventually(t, "the waiter is released", func() bool { return f.metric(t, "nmp_bundle_waiters") == 0 })
	if n := f.metric(t, "nmp_bundle_responses_total", "code", "304"); n != 0 {
		t.Fatalf("%v responses to a client that went away", n)
	}
}

// TestLongPollOutlivesReadTimeout: the HTTP server's read timeout (60 s in
// the platform, below the 300 s wait cap) does not cut a long poll short
// (net/http lifts the read deadline once a body-less request is read).
func TestLongPollOutlivesReadTimeout(t *testing.T) {
	f := newFixture(t)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f.srv.Serve(w, r); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}))
	hs.Config.ReadTimeout = 100 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)
	tag := f.get(context.Background(), t, "GET", "", "").Header().Get("ETag")
	req, err := http.NewRequest("GET", hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", tag)
	req.Header.Set("Prefer", "wait=1")
	start := time.Now()
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, resp.Body)
	if d := time.Since(start); resp.StatusCode != 304 || resp.Header.Get("ETag") != tag || d < time.Second {
		t.Fatalf("%d %v after %v, want 304 after the 1 s wait", resp.StatusCode, resp.Header, d)
	}
}

// gatedSource holds BundleData until released and counts its calls.
type gatedSource struct {
	*authz.Engine
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (g *gatedSource) BundleData() (int64, map[string]any) {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return g.Engine.BundleData()
}

// TestOneBuildPerRevision: concurrent requests for a revision not built
// yet share one build; the next revision is built once more.
func TestOneBuildPerRevision(t *testing.T) {
	e := authztest.StaticEngine(t)
	load(t, e, 3, randomBindings(1, 50))
	src := &gatedSource{Engine: e, entered: make(chan struct{}), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	srv := bundle.New(bundle.Options{Source: src, Registerer: reg})
	const n = 50
	results := make(chan *bundle.Bundle, n)
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		go func() {
			started.Done()
			b, err := srv.Current(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- b
		}()
	}
	<-src.entered // one build is under way and held
	started.Wait()
	close(src.release)
	first := <-results
	for range n - 1 {
		if b := <-results; b != first {
			t.Fatal("callers got different bundles for one revision")
		}
	}
	if c := src.calls.Load(); c != 1 {
		t.Fatalf("%d builds for one revision", c)
	}
	load(t, e, 4, randomBindings(1, 50))
	b, err := srv.Current(context.Background())
	if err != nil || b.Revision != 4 || src.calls.Load() != 2 {
		t.Fatalf("next revision: %v %v, %d builds", b, err, src.calls.Load())
	}
	if got, err := srv.Current(context.Background()); err != nil || got != b {
		t.Fatalf("cached bundle not reused: %v", err)
	}
	if c := metricValue(t, reg, "nmp_bundle_builds_total"); c != 2 {
		t.Fatalf("builds metric %v", c)
	}
}

// TestNotLoaded: before the first load there is no bundle.
func TestNotLoaded(t *testing.T) {
	srv := bundle.New(bundle.Options{Source: authztest.StaticEngine(t)})
	if _, err := srv.Current(context.Background()); !errors.Is(err, bundle.ErrNotLoaded) {
		t.Fatalf("Current before a load: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := srv.Serve(rec, httptest.NewRequest("GET", "/", nil)); !errors.Is(err, bundle.ErrNotLoaded) || rec.Body.Len() != 0 {
		t.Fatalf("Serve before a load: %v, %d bytes written", err, rec.Body.Len())
	}
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestThousandWaiters holds 1,000 long-polling requests: each costs its
// own goroutine and nothing else, the store is not read while they wait,
// and the process burns next to no CPU until their waits end.
func TestThousandWaiters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tag := f.get(ctx, t, "GET", "", "").Header().Get("ETag")
	const n = 1000
	baseGoroutines := runtime.NumGoroutine()
	baseCalls := f.src.calls.Load()
	codes := make(chan int, n)
	for range n {
		go func() { codes <- f.get(ctx, t, "GET", tag, "modes=snapshot,delta;wait=1").Code }()
	}
	eventually(t, "all requests wait", func() bool { return f.metric(t, "nmp_bundle_waiters") == n })
	held := time.Now()
	cpu0 := cpuTime(t)
	extra := runtime.NumGoroutine() - baseGoroutines
	if extra > n+10 {
		t.Errorf("%d goroutines for %d waiters", extra, n)
	}
	for range n {
		if c := <-codes; c != 304 {
			t.Fatalf("a waiter got %d, want 304 at its deadline", c)
		}
	}
	cpu, wall := cpuTime(t)-cpu0, time.Since(held)
	t.Logf("%d waiters (%d goroutines): held for %v using %v of CPU (release included)", n, extra,
		wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	if wall < 500*time.Millisecond {
		t.Fatalf("the hold lasted only %v", wall)
	}
	if cpu > wall/4 {
		t.Errorf("%v of CPU during a %v hold", cpu, wall)
	}
	if calls := f.src.calls.Load() - baseCalls; calls != 0 {
		t.Errorf("%d store reads while the requests waited", calls)
	}
	if w := f.metric(t, "nmp_bundle_waiters"); w != 0 {
		t.Fatalf("%v waiters left", w)
	}
}
