// Package decisionlog writes an optional log of authorization decisions,
// one JSON object per line: every denial, and allow decisions sampled at
// a configured rate.
//
// Record is called on the request path and never blocks: a kept entry is
// put into a bounded buffer, and when the buffer is full it is dropped
// and counted instead. The Logger's background component (Run) takes the
// entries out of the buffer and writes them through log/slog's JSON
// handler; when it is stopped it writes what is still buffered and
// flushes. An entry holds facts about the decision only: never a token, a
// header value or a body.
package decisionlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/asynclog"
	"github.com/nmp-project/nmp/internal/authz"
)

// Component is the logger's name in logs and health.
const Component = "decision log"

// Source is where a decision was asked for.
type Source string

// The sources of decisions.
const (
	// SourceAPI: the request pipeline deciding on an API request.
	SourceAPI Source = "api"
	// SourceCallout: the gateway callout /apis/auth/authenticate.
	SourceCallout Source = "callout"
	// SourceExtAuthz: the Envoy ext_authz gRPC check.
	SourceExtAuthz Source = "ext_authz"
	// SourceSelfCheck: the "can I?" self-check (a question, not a request
	// being let through).
	SourceSelfCheck Source = "self-check"
)

// Entry is one decision as the caller knows it. The Logger adds the
// decision id, the policy decision point's provider, the policy revision
// and, from the path, its canonical form and workspace.
type Entry struct {
	// Time is when the decision was made (zero: the Logger's clock at
	// Record).
	Time time.Time
	// RequestID is the request's X-Request-Id.
	RequestID string
	// Principal and Email identify the caller ("" when anonymous; Email
	// only when the caller has one).
	Principal, Email string
	// OnBehalfOf is the user a service principal acts for ("" if none).
	OnBehalfOf string
	// Method and Path are what was decided on; Path may be escaped and
	// carry a query, which is never logged. Both are empty for a
	// self-check of permissions in a workspace.
	Method, Path string
	// Workspace is the workspace decided about; empty: the workspace the
	// path names, if any (Options.Workspace).
	Workspace string
	// Allowed is the decision; Reason the decision point's reason.
	Allowed bool
	Reason  string
	// Latency is how long the decision took.
	Latency time.Duration
	// Source is where the decision was asked for.
	Source Source
}

// Options configure New.
type Options struct {
	// Output receives the JSON lines; it is closed when Run returns if it
	// is an io.Closer other than os.Stderr and os.Stdout (see Open).
	Output io.Writer
	// AllowSampleRate is the share of allow decisions kept, 0..1.
	// Denials are always kept.
	AllowSampleRate float64
	// BufferSize bounds the entries waiting to be written (≤ 0: 10000).
	BufferSize int
	// Provider names the policy decision point ("embedded", "opa").
	Provider string
	// Revision returns the policy revision decisions are made at now; it
	// is read when an entry is recorded (nil: 0).
	Revision func() int64
	// Workspace returns the workspace that method and path name, if any
	// (authz.Catalog.PathWorkspace); called by the writer. Nil: none.
	Workspace func(method, path string) (string, bool)
	// Rand is the sampling source (nil: math/rand/v2's global source);
	// tests pass a seeded one.
	Rand mrand.Source
	// Clock stamps entries recorded without a time (nil: time.Now).
	Clock func() time.Time
	// Registerer receives the logger's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Log receives write failures (nil: discarded); never an entry.
	Log *slog.Logger
}

// DefaultBufferSize is auth.decision_log.buffer_size's default.
const DefaultBufferSize = asynclog.DefaultBufferSize

// Logger is the decision log. A nil *Logger records nothing, so callers
// need no check of their own.
type Logger struct {
	o      Options
	q      *asynclog.Queue[record]
	sample *asynclog.Sampler

	logged prometheus.Counter
}

// record is an Entry with what Record adds.
type record struct {
	Entry
	revision int64
}

// New returns a logger that writes once Run runs.
func New(o Options) *Logger {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		if o.Registerer != nil {
			o.Registerer.MustRegister(c)
		}
		return c
	}
	l := &Logger{o: o, sample: asynclog.NewSampler(o.AllowSampleRate, o.Rand)}
	l.logged = counter("nmp_decision_log_logged_total",
		"Decisions kept for the decision log (every denial, sampled allows), whether written or dropped.")
	l.q = asynclog.New(asynclog.Options[record]{Name: Component, Output: o.Output, BufferSize: o.BufferSize,
		Record: l.record, Log: o.Log,
		Written: counter("nmp_decision_log_written_total", "Decision log entries written (flushed) to the output."),
		Dropped: counter("nmp_decision_log_dropped_total",
			"Decision log entries dropped because the buffer was full (the request was not delayed)."),
		Failed: counter("nmp_decision_log_write_errors_total", "Decision log entries whose write to the output failed.")})
	return l
}

// Open opens auth.decision_log.output: "stderr" is the process's standard
// error; anything else a file path, appended to and created with mode
// 0600 if missing.
func Open(output string) (io.Writer, error) {
	if output == "stderr" {
		return os.Stderr, nil
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("decision log output: %w", err)
	}
	return f, nil
}

// Record logs e if it is kept (denials always, allows sampled) without
// ever waiting: when the buffer is full the entry is dropped and counted.
func (l *Logger) Record(e Entry) {
	if l == nil || (e.Allowed && !l.sample.Keep()) {
		return
	}
	l.logged.Inc()
	if e.Time.IsZero() {
		e.Time = l.o.Clock()
	}
	r := record{Entry: e}
	if l.o.Revision != nil {
		r.revision = l.o.Revision()
	}
	l.q.Put(r)
}

// Name implements lifecycle.Component.
func (l *Logger) Name() string { return Component }

// Run writes entries as they come until ctx ends, then writes what is
// still buffered, flushes and closes the output (a file; never stderr).
func (l *Logger) Run(ctx context.Context) error { return l.q.Run(ctx) }

// record is the log record of one entry (formatted by the writer).
func (l *Logger) record(r record) slog.Record {
	rec := slog.NewRecord(r.Time, slog.LevelInfo, "decision", 0)
	rec.AddAttrs(l.attrs(r)...)
	return rec
}

// attrs are the entry's fields: facts about the decision, never a
// credential, a header value or a body.
func (l *Logger) attrs(r record) []slog.Attr {
	path, _, _ := strings.Cut(r.Path, "?")
	if c, ok := authz.CanonicalPath(path); ok {
		path = c
	}
	decision := "deny"
	if r.Allowed {
		decision = "allow"
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("decision_id", newID()))
	if r.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", r.RequestID))
	}
	if r.Principal != "" {
		p := []any{slog.String("id", r.Principal)}
		if r.Email != "" {
			p = append(p, slog.String("email", r.Email))
		}
		attrs = append(attrs, slog.Group("principal", p...))
	}
	if r.OnBehalfOf != "" {
		attrs = append(attrs, slog.String("on_behalf_of", r.OnBehalfOf))
	}
	if r.Method != "" || r.Path != "" {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", path))
	}
	ws := r.Workspace
	if ws == "" && l.o.Workspace != nil && r.Path != "" {
		ws, _ = l.o.Workspace(r.Method, path)
	}
	if ws != "" {
		attrs = append(attrs, slog.String("workspace", ws))
	}
	return append(attrs,
		slog.String("decision", decision),
		slog.String("reason", r.Reason),
		slog.String("pdp", l.o.Provider),
		slog.Int64("policy_revision", r.revision),
		slog.Int64("latency_us", r.Latency.Microseconds()),
		slog.String("source", string(r.Source)))
}

// newID is a random decision id (128 bits, hex).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
