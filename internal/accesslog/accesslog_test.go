package accesslog_test

import (
	"bytes"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/asynclog/asynclogtest"
)

// running is a Logger whose Run goroutine the test stops.
type running struct {
	l    *accesslog.Logger
	reg  *prometheus.Registry
	stop func() error
}

func start(t *testing.T, o accesslog.Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	l := accesslog.New(o)
	if l == nil {
		t.Fatal("New returned nil")
	}
	stop := asynclogtest.Start(t, l.Run)
	return &running{l: l, reg: reg, stop: stop}
}

func (r *running) count(t *testing.T, name string) int {
	t.Helper()
	return asynclogtest.Counter(t, r.reg, name)
}

// record offers a request with status to l, as the middleware does.
func record(l *accesslog.Logger, status int, i int) {
	if l.Enabled(status) {
		l.Record(accesslog.Entry{Time: time.Unix(1700000000, 0), RequestID: "r" + string(rune('a'+i%26)), Method: "GET",
			Path: "/v2/workspaces", Status: status, Duration: 1500 * time.Microsecond, RemoteAddr: "127.0.0.1:1"})
	}
}

// TestSamplingKeepsEveryError: at sample rate 0 no success is logged and
// every status ≥ 400 is; at 1 everything is; at 0.5 (fixed source) about
// half the successes and still every error.
func TestSamplingKeepsEveryError(t *testing.T) {
	const n = 400
	for _, tc := range []struct {
		rate             float64
		minOK, maxOK     int
		wantErrs, status int
	}{
		{rate: 0, minOK: 0, maxOK: 0},
		{rate: 1, minOK: n, maxOK: n},
		{rate: 0.5, minOK: n / 4, maxOK: 3 * n / 4},
	} {
		var out bytes.Buffer
		r := start(t, accesslog.Options{Output: &out, SampleRate: tc.rate, Rand: mrand.NewPCG(1, 2)})
		errStatuses := []int{400, 401, 403, 404, 429, 500, 503}
		for i := range n {
			record(r.l, 200, i)
			record(r.l, errStatuses[i%len(errStatuses)], i)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		ok, errs := 0, 0
		for _, e := range asynclogtest.Lines(t, out.Bytes()) {
			if e["status"].(float64) >= 400 {
				errs++
			} else {
				ok++
			}
		}
		if errs != n {
			t.Errorf("rate %v: %d error lines, want every one of %d", tc.rate, errs, n)
		}
		if ok < tc.minOK || ok > tc.maxOK {
			t.Errorf("rate %v: %d success lines, want %d..%d", tc.rate, ok, tc.minOK, tc.maxOK)
		}
		if got := r.count(t, "nmp_access_log_written_total"); got != errs+ok {
			t.Errorf("rate %v: written_total = %d, want %d", tc.rate, got, errs+ok)
		}
	}
}

// TestNeverBlocks: while the writer is stuck in the output, Record fills
// the buffer and then drops and counts each further line without waiting.
func TestNeverBlocks(t *testing.T) {
	const size = 3
	g := asynclogtest.NewGate()
	r := start(t, accesslog.Options{Output: g, BufferSize: size, SampleRate: 1})
	var release sync.Once
	open := func() { release.Do(func() { close(g.Release) }) }
	t.Cleanup(open)
	record(r.l, 200, 0) // taken by the writer, which then blocks in Write
	select {
	case <-g.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never wrote the first line")
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := range size + 2 {
			record(r.l, 500, i+1)
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked while the writer was stuck")
	}
	if got := r.count(t, "nmp_access_log_dropped_total"); got != 2 {
		t.Errorf("dropped_total = %d, want 2", got)
	}
	open()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(asynclogtest.Lines(t, g.Bytes())); got != size+1 {
		t.Errorf("%d lines written, want %d", got, size+1)
	}
}

// TestLineFieldsAndRedaction: the line carries the request's facts, and
// credential query parameters are redacted in any case.
func TestLineFieldsAndRedaction(t *testing.T) {
	var out bytes.Buffer
	r := start(t, accesslog.Options{Output: &out, SampleRate: 1})
	q := "page=2&token=t1&ACCESS_TOKEN=t2&refresh_token=t3&code=c&Password=p&client_secret=s&filter%5Bname%5D=a"
	r.l.Record(accesslog.Entry{Time: time.Unix(1700000000, 0), RequestID: "req-1", Method: "GET", Path: "/v2/workspaces",
		RawQuery: q, Status: 200, Duration: 2 * time.Millisecond, RemoteAddr: "10.0.0.1:5", Principal: "alice"})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	got := asynclogtest.Lines(t, out.Bytes())
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1", len(got))
	}
	e := got[0]
	for k, want := range map[string]any{"msg": "request", "level": "INFO", "request_id": "req-1", "method": "GET",
		"path": "/v2/workspaces", "status": 200.0, "duration_ms": 2.0, "remote_addr": "10.0.0.1:5", "principal": "alice"} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}
	for _, secret := range []string{"t1", "t2", "t3", "=c", "=p", "=s"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("line holds %q: %s", secret, out.String())
		}
	}
	vals, err := url.ParseQuery(e["query"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"token", "ACCESS_TOKEN", "refresh_token", "code", "Password", "client_secret"} {
		if vals.Get(k) != "REDACTED" {
			t.Errorf("%s = %q, want REDACTED", k, vals.Get(k))
		}
	}
	if vals.Get("page") != "2" || vals.Get("filter[name]") != "a" {
		t.Errorf("other parameters changed: %v", vals)
	}
}

func TestRedactQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                       "",
		"a=1":                    "a=1",
		"token=x":                "token=REDACTED",
		"Code=x&code=y":          "Code=REDACTED&code=REDACTED",
		"password=x&password=y":  "password=REDACTED&password=REDACTED",
		"client_secret=%2Fx&b=2": "b=2&client_secret=REDACTED",
		"refresh_token&x=1":      "refresh_token=REDACTED&x=1",
		"%zz=1&ok=2":             "ok=2",
	} {
		if got := accesslog.RedactQuery(raw); got != want {
			t.Errorf("RedactQuery(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestLevelAndOff: "off", or a level the service log does not show, is a
// nil logger that records nothing; "debug" under a debug service log is
// written at DEBUG.
func TestLevelAndOff(t *testing.T) {
	info := func(w io.Writer) slog.Handler {
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	if l := accesslog.New(accesslog.Options{Off: true, SampleRate: 1}); l != nil {
		t.Error("off: logger not nil")
	}
	if l := accesslog.New(accesslog.Options{Level: slog.LevelDebug, Handler: info, SampleRate: 1}); l != nil {
		t.Error("debug under an info service log: logger not nil")
	}
	var nilLogger *accesslog.Logger
	if nilLogger.Enabled(500) {
		t.Error("nil logger enabled")
	}
	nilLogger.Record(accesslog.Entry{}) // no panic
	for in, want := range map[string]struct {
		level slog.Level
		off   bool
	}{"off": {0, true}, "OFF": {0, true}, "debug": {slog.LevelDebug, false}, "info": {slog.LevelInfo, false}, "warn": {slog.LevelWarn, false}} {
		level, off, err := accesslog.ParseLevel(in)
		if err != nil || level != want.level || off != want.off {
			t.Errorf("ParseLevel(%q) = %v, %v, %v", in, level, off, err)
		}
	}
	if _, _, err := accesslog.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud): no error")
	}
	var out bytes.Buffer
	debug := func(w io.Writer) slog.Handler {
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	r := start(t, accesslog.Options{Output: &out, Handler: debug, Level: slog.LevelDebug, SampleRate: 1})
	record(r.l, 200, 0)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := asynclogtest.Lines(t, out.Bytes()); len(got) != 1 || got[0]["level"] != "DEBUG" {
		t.Errorf("lines = %v, want one DEBUG line", got)
	}
}
