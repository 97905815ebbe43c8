// Package accesslog writes the API's access log, one line per request
// kept, off the request path.
//
// Record never blocks: a kept request is put into a bounded buffer
// (internal/asynclog, shared with the decision log), and when the buffer
// is full it is dropped and counted (nmp_access_log_dropped_total). The
// line is formatted by the background writer, through the service log's
// handler (plain or JSON, service.log_format), at the configured level:
// a level the service log does not show costs nothing per request.
// Successful requests (status < 400) are sampled; errors, refusals and
// denials (status ≥ 400) are always kept. Query parameters that carry
// credentials are redacted.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/asynclog"
)

// Component is the access log's name in logs and health.
const Component = "access log"

// Entry is one request as the middleware saw it.
type Entry struct {
	Time       time.Time // when the request started
	RequestID  string
	Method     string
	Path       string
	RawQuery   string // redacted when written
	Status     int
	Duration   time.Duration
	RemoteAddr string
	Principal  string // "" when anonymous or not identified
}

// Options configure New.
type Options struct {
	// Output receives the lines (nil: discarded).
	Output io.Writer
	// Handler formats the lines, written to its writer (nil: JSON). Its
	// Enabled method decides, once, whether Level is logged at all.
	Handler func(io.Writer) slog.Handler
	// Format, when "plain" or "json", says that Handler is log/slog's
	// TextHandler or JSONHandler with no option but a level: the writer
	// then formats common lines itself, byte for byte as the handler
	// would, and hands the others to the handler. "": always the handler.
	Format string
	// Off turns the access log off; Level is the level of its lines.
	Off   bool
	Level slog.Level
	// SampleRate is the share of successful requests (status < 400) kept,
	// 0..1; others are always kept.
	SampleRate float64
	// BufferSize bounds the lines waiting to be written (≤ 0: 10000).
	BufferSize int
	// Rand is the sampling source (nil: math/rand/v2's global source).
	Rand mrand.Source
	// Registerer receives the log's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Log receives write failures (nil: discarded).
	Log *slog.Logger
}

// ParseLevel reads service.access_log.level: "off", or a log/slog level
// name ("debug", "info", "warn", "error", any case).
func ParseLevel(s string) (level slog.Level, off bool, err error) {
	if strings.EqualFold(s, "off") {
		return 0, true, nil
	}
	err = level.UnmarshalText([]byte(s))
	return level, false, err
}

// Logger is the access log. A nil *Logger (or one that is off) records
// nothing.
type Logger struct {
	q      *asynclog.Queue[Entry]
	level  slog.Level
	sample *asynclog.Sampler
}

// New returns the access log, or nil when it is off or its level is not
// shown by the handler. It writes once Run runs.
func New(o Options) *Logger {
	if o.Handler == nil {
		o.Handler = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }
	}
	if o.Off || !o.Handler(io.Discard).Enabled(context.Background(), o.Level) {
		return nil
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		if o.Registerer != nil {
			o.Registerer.MustRegister(c)
		}
		return c
	}
	l := &Logger{level: o.Level, sample: asynclog.NewSampler(o.SampleRate, o.Rand)}
	var appendFn func([]byte, Entry) ([]byte, bool)
	if o.Format == "plain" || o.Format == "json" {
		format, level := o.Format, o.Level
		appendFn = func(b []byte, e Entry) ([]byte, bool) { return appendLine(b, format, level, e) }
	}
	l.q = asynclog.New(asynclog.Options[Entry]{Name: Component, Output: o.Output, Handler: o.Handler,
		BufferSize: o.BufferSize, Record: l.record, Append: appendFn, Log: o.Log,
		Written: counter("nmp_access_log_written_total", "Access log lines written (flushed) to the output."),
		Dropped: counter("nmp_access_log_dropped_total",
			"Access log lines dropped because the buffer was full (the request was not delayed)."),
		Failed: counter("nmp_access_log_write_errors_total", "Access log lines whose write to the output failed.")})
	return l
}

// Enabled reports whether a request with this status may be kept; the
// middleware skips building an Entry otherwise.
func (l *Logger) Enabled(status int) bool {
	return l != nil && (status >= 400 || l.sample.Keep())
}

// Record queues e without waiting (dropped and counted when the buffer is
// full). Call it only after Enabled(e.Status) said true.
func (l *Logger) Record(e Entry) {
	if l != nil {
		l.q.Put(e)
	}
}

// Name implements lifecycle.Component.
func (l *Logger) Name() string { return Component }

// Run writes lines as they come until ctx ends, then writes what is still
// buffered and flushes.
func (l *Logger) Run(ctx context.Context) error { return l.q.Run(ctx) }

// record is the line of one entry (formatted by the writer).
func (l *Logger) record(e Entry) slog.Record {
	r := slog.NewRecord(e.Time, l.level, "request", 0)
	r.AddAttrs(slog.String("request_id", e.RequestID), slog.String("method", e.Method), slog.String("path", e.Path),
		slog.Int("status", e.Status), slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.String("remote_addr", e.RemoteAddr))
	if q := RedactQuery(e.RawQuery); q != "" {
		r.AddAttrs(slog.String("query", q))
	}
	if e.Principal != "" {
		r.AddAttrs(slog.String("principal", e.Principal))
	}
	return r
}

// redacted lists query parameters whose values never reach the logs.
var redacted = map[string]bool{"token": true, "access_token": true, "refresh_token": true,
	"code": true, "password": true, "client_secret": true}

// RedactQuery is the raw query with the values of credential parameters
// (token, access_token, refresh_token, code, password, client_secret, in
// any case) replaced by REDACTED, re-encoded; "" for none.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, _ := url.ParseQuery(raw) // as r.URL.Query(): malformed pairs are skipped
	if len(q) == 0 {
		return ""
	}
	out := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if redacted[strings.ToLower(k)] {
				v = "REDACTED"
			}
			out.Add(k, v)
		}
	}
	return out.Encode()
}
