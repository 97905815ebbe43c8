package decisionlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/asynclog/asynclogtest"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/decisionlog"
)

// running is a Logger whose Run goroutine the test stops.
type running struct {
	l    *decisionlog.Logger
	reg  *prometheus.Registry
	stop func() error
}

func start(t *testing.T, o decisionlog.Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	l := decisionlog.New(o)
	stop := asynclogtest.Start(t, l.Run)
	return &running{l: l, reg: reg, stop: stop}
}

// count is the value of one of the logger's counters.
func (r *running) count(t *testing.T, name string) int {
	t.Helper()
	return asynclogtest.Counter(t, r.reg, name)
}

func entry(allowed bool, i int) decisionlog.Entry {
	return decisionlog.Entry{RequestID: "req-" + string(rune('a'+i%26)), Principal: "alice", Method: "GET",
		Path: "/apis/entities/v2/workspaces/default", Allowed: allowed, Reason: "permission_granted", Source: decisionlog.SourceAPI}
}

// TestSampling: denials are always logged; allows at the rate: none at 0,
// all at 1, and at 0.5 exactly the draws of the injected source that
// fall under 0.5.
func TestSampling(t *testing.T) {
	const n = 400
	expectedHalf := 0
	replay := mrand.New(mrand.NewPCG(7, 11))
	for range n {
		if replay.Float64() < 0.5 {
			expectedHalf++
		}
	}
	tests := []struct {
		name       string
		rate       float64
		wantAllows int
	}{
		{"rate 0 logs no allow", 0, 0},
		{"rate 1 logs every allow", 1, n},
		{"rate 0.5 logs the sampled allows", 0.5, expectedHalf},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := start(t, decisionlog.Options{Output: &out, AllowSampleRate: tc.rate, BufferSize: 4 * n,
				Rand: mrand.NewPCG(7, 11)})
			for i := range n {
				r.l.Record(entry(true, i))
				r.l.Record(entry(false, i))
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			allows, denies := 0, 0
			for _, e := range asynclogtest.Lines(t, out.Bytes()) {
				switch e["decision"] {
				case "allow":
					allows++
				case "deny":
					denies++
				}
			}
			if allows != tc.wantAllows || denies != n {
				t.Errorf("allows, denies = %d, %d; want %d, %d", allows, denies, tc.wantAllows, n)
			}
			if got := r.count(t, "nmp_decision_log_logged_total"); got != tc.wantAllows+n {
				t.Errorf("logged_total = %d, want %d", got, tc.wantAllows+n)
			}
			if got := r.count(t, "nmp_decision_log_written_total"); got != tc.wantAllows+n {
				t.Errorf("written_total = %d, want %d", got, tc.wantAllows+n)
			}
		})
	}
	if expectedHalf == 0 || expectedHalf == n {
		t.Fatalf("the fixed source gave %d of %d under 0.5: not a sampling test", expectedHalf, n)
	}
}

// TestFullBufferDropsWithoutBlocking: while the writer is stuck in the
// output, Record fills the buffer and then drops and counts each further
// entry, without waiting; once the output moves, what was buffered is
// written.
func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	const size = 3
	g := asynclogtest.NewGate()
	r := start(t, decisionlog.Options{Output: g, BufferSize: size})
	var release sync.Once
	open := func() { release.Do(func() { close(g.Release) }) }
	t.Cleanup(open)             // runs before the stop, even when the test fails early
	r.l.Record(entry(false, 0)) // taken by the writer, which then blocks in Write
	select {
	case <-g.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never wrote the first entry")
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := range size + 2 { // size fit, 2 are dropped
			r.l.Record(entry(false, i+1))
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked while the writer was stuck")
	}
	if got := r.count(t, "nmp_decision_log_dropped_total"); got != 2 {
		t.Errorf("dropped_total = %d, want 2", got)
	}
	if got := r.count(t, "nmp_decision_log_written_total"); got != 0 {
		t.Errorf("written_total = %d while the output is stuck, want 0", got)
	}
	open()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(asynclogtest.Lines(t, g.Bytes())); got != size+1 {
		t.Errorf("%d lines written, want %d", got, size+1)
	}
	if got := r.count(t, "nmp_decision_log_logged_total"); got != size+3 {
		t.Errorf("logged_total = %d, want %d", got, size+3)
	}
}

// TestEntryFields: one line per decision with every field, the path
// canonical without its query, the workspace the path names, the email
// only when the caller has one, and nothing else of the request.
func TestEntryFields(t *testing.T) {
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	var out bytes.Buffer
	rev := int64(41)
	r := start(t, decisionlog.Options{Output: &out, AllowSampleRate: 1, Provider: "embedded",
		Revision: func() int64 { return rev }, Workspace: authz.NewCatalog(doc).PathWorkspace, Clock: func() time.Time { return at }})
	r.l.Record(decisionlog.Entry{RequestID: "r1", Principal: "svc-a", Email: "svc@example.com", OnBehalfOf: "bob",
		Method: "POST", Path: "/v2/workspaces/team-a/members/?secret=hunter2", Allowed: false, Reason: "permission_missing",
		Latency: 1500 * time.Microsecond, Source: decisionlog.SourceCallout})
	rev = 42
	r.l.Record(decisionlog.Entry{RequestID: "r2", Principal: "alice", Method: "GET", Path: "/apis/auth/v2/iam/role-bindings",
		Allowed: true, Reason: "permission_granted", Source: decisionlog.SourceAPI, Time: at.Add(time.Second)})
	r.l.Record(decisionlog.Entry{RequestID: "r3", Workspace: "team-b", Allowed: true, Reason: "platform_admin",
		Source: decisionlog.SourceSelfCheck})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("the query reached the log: %s", out.String())
	}
	got := asynclogtest.Lines(t, out.Bytes())
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), out.String())
	}
	ids := map[string]bool{}
	for i, e := range got {
		id, _ := e["decision_id"].(string)
		if len(id) != 32 || ids[id] {
			t.Errorf("line %d: decision_id %q is not a new 128-bit id", i, id)
		}
		ids[id] = true
		delete(e, "decision_id")
	}
	want := []map[string]any{
		{"time": "2026-12-03T04:05:06Z", "level": "INFO", "msg": "decision", "request_id": "r1",
			"principal": map[string]any{"id": "svc-a", "email": "svc@example.com"}, "on_behalf_of": "bob",
			"method": "POST", "path": "/apis/entities/v2/workspaces/team-a/members", "workspace": "team-a",
			"decision": "deny", "reason": "permission_missing", "pdp": "embedded", "policy_revision": 41.0,
			"latency_us": 1500.0, "source": "callout"},
		{"time": "2026-12-03T04:05:07Z", "level": "INFO", "msg": "decision", "request_id": "r2",
			"principal": map[string]any{"id": "alice"}, "method": "GET", "path": "/apis/auth/v2/iam/role-bindings",
			"decision": "allow", "reason": "permission_granted", "pdp": "embedded", "policy_revision": 42.0,
			"latency_us": 0.0, "source": "api"},
		{"time": "2026-12-03T04:05:06Z", "level": "INFO", "msg": "decision", "request_id": "r3", "workspace": "team-b",
			"decision": "allow", "reason": "platform_admin", "pdp": "embedded", "policy_revision": 42.0,
			"latency_us": 0.0, "source": "self-check"},
	}
	for i := range want {
		gj, _ := json.Marshal(got[i])
		wj, _ := json.Marshal(want[i])
		if string(gj) != string(wj) {
			t.Errorf("line %d:\n got %s\nwant %s", i, gj, wj)
		}
	}
}

// TestStopFlushes: entries still buffered when the logger is stopped are
// written and flushed before Run returns.
func TestStopFlushes(t *testing.T) {
	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	l := decisionlog.New(decisionlog.Options{Output: &out, BufferSize: 100, Registerer: reg})
	for i := range 50 {
		l.Record(entry(false, i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it ever ran: everything is left to the stop
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(asynclogtest.Lines(t, out.Bytes())); got != 50 {
		t.Errorf("%d lines after stop, want 50", got)
	}
	if v := asynclogtest.Counter(t, reg, "nmp_decision_log_written_total"); v != 50 {
		t.Errorf("written_total = %v, want 50", v)
	}
}

// TestFileOutput: a file output is created 0600, appended to (earlier
// content stays), and closed by the stop; a missing directory is an error
// at Open.
func TestFileOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	for round := range 2 {
		w, err := decisionlog.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, decisionlog.Options{Output: w})
		r.l.Record(entry(false, round))
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o, want 600", mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(asynclogtest.Lines(t, data)); got != 2 {
		t.Errorf("%d lines after two runs, want 2 (appended)", got)
	}
	if _, err := decisionlog.Open(filepath.Join(t.TempDir(), "missing", "d.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory: %v, want ErrNotExist", err)
	}
	if w, err := decisionlog.Open("stderr"); err != nil || w != os.Stderr {
		t.Errorf(`Open("stderr") = %v, %v; want os.Stderr`, w, err)
	}
}

// failing is an output that refuses every write until it is fixed.
type failing struct {
	mu    sync.Mutex
	fixed bool
	buf   bytes.Buffer
}

func (f *failing) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.fixed {
		return 0, errors.New("disk full")
	}
	return f.buf.Write(p)
}

// TestWriteFailureCountedAndRecovered: entries that cannot be written are
// counted as errors, not as written, and writing resumes when the output
// works again.
func TestWriteFailureCountedAndRecovered(t *testing.T) {
	out := &failing{}
	reg := prometheus.NewRegistry()
	l := decisionlog.New(decisionlog.Options{Output: out, Registerer: reg})
	for i := range 3 {
		l.Record(entry(false, i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = l.Run(ctx) // fails when the failed flush is its last one; either way the entries are counted
	if v := asynclogtest.Counter(t, reg, "nmp_decision_log_write_errors_total"); v != 3 {
		t.Errorf("write_errors_total = %v, want 3", v)
	}
	out.fixed = true
	l.Record(entry(false, 9))
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(asynclogtest.Lines(t, out.buf.Bytes())); got != 1 {
		t.Errorf("%d lines after the output recovered, want 1", got)
	}
}

// TestNilLogger: a nil logger records nothing and does not panic.
func TestNilLogger(t *testing.T) {
	var l *decisionlog.Logger
	l.Record(entry(false, 0))
}
