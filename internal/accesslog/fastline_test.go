package accesslog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// slogLine is e's line as the writer's handler formats it.
func slogLine(t testing.TB, format string, level slog.Level, e Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if format == "json" {
		h = slog.NewJSONHandler(&buf, opts)
	} else {
		h = slog.NewTextHandler(&buf, opts)
	}
	l := &Logger{level: level}
	if err := h.Handle(context.Background(), l.record(e)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkSame fails when appendLine formats e differently from the handler;
// it reports whether appendLine formatted it.
func checkSame(t testing.TB, format string, level slog.Level, e Entry) bool {
	t.Helper()
	got, ok := appendLine([]byte("prefix "), format, level, e)
	if !ok {
		if string(got) != "prefix " {
			t.Fatalf("appendLine declined but changed the buffer: %q", got)
		}
		return false
	}
	want := append([]byte("prefix "), slogLine(t, format, level, e)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s line of %+v:\n got %q\nwant %q", format, e, got, want)
	}
	return true
}

var levels = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

// TestFastLineMatchesSlog: the lines the writer formats itself are byte
// for byte the handler's, for typical requests (which it must format
// itself, or the fast path is gone) and for values it must leave to the
// handler.
func TestFastLineMatchesSlog(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	base := Entry{Time: time.Date(2026, 12, 3, 11, 14, 31, 212_345_678, time.UTC), RequestID: "a3737f52-86b2-43af-b1cc-da2bf8e6739b",
		Method: "POST", Path: "/apis/auth/v2/authz/allow", Status: 200, Duration: 57 * time.Microsecond,
		RemoteAddr: "192.0.2.1:1234", Principal: "service:gateway"}
	for _, tc := range []struct {
		name string
		edit func(*Entry)
		fast bool // appendLine must format it
	}{
		{name: "typical", edit: func(*Entry) {}, fast: true},
		{name: "anonymous", edit: func(e *Entry) { e.Principal = "" }, fast: true},
		{name: "whole millisecond", edit: func(e *Entry) { e.Time = e.Time.Truncate(time.Second); e.Duration = 3 * time.Millisecond }, fast: true},
		{name: "zero duration", edit: func(e *Entry) { e.Duration = 0 }, fast: true},
		{name: "long duration", edit: func(e *Entry) { e.Duration = 90*time.Minute + 7*time.Microsecond }, fast: true},
		{name: "sub-microsecond duration", edit: func(e *Entry) { e.Duration = 999 }, fast: true},
		{name: "other zone", edit: func(e *Entry) { e.Time = e.Time.In(berlin) }, fast: true},
		{name: "monotonic clock reading", edit: func(e *Entry) { e.Time = time.Now() }, fast: true},
		{name: "error status", edit: func(e *Entry) { e.Status = 503 }, fast: true},
		{name: "email principal", edit: func(e *Entry) { e.Principal = "alice@example.com" }, fast: true},
		{name: "escaped path", edit: func(e *Entry) { e.Path = "/v2/workspaces/a%2Fb" }, fast: true},
		{name: "query", edit: func(e *Entry) { e.RawQuery = "token=secret&page=2" }},
		{name: "space in path", edit: func(e *Entry) { e.Path = "/a b" }},
		{name: "quote", edit: func(e *Entry) { e.Principal = `x"y` }},
		{name: "equals", edit: func(e *Entry) { e.Principal = "a=b" }},
		{name: "backslash", edit: func(e *Entry) { e.Path = `/a\b` }},
		{name: "html", edit: func(e *Entry) { e.Path = "/a<b>&c" }},
		{name: "unicode", edit: func(e *Entry) { e.Principal = "josé" }},
		{name: "control", edit: func(e *Entry) { e.RequestID = "a\x01b" }},
		{name: "invalid UTF-8", edit: func(e *Entry) { e.Path = "/\xff" }},
		{name: "empty request id", edit: func(e *Entry) { e.RequestID = "" }},
		{name: "empty remote address", edit: func(e *Entry) { e.RemoteAddr = "" }},
		{name: "zero time", edit: func(e *Entry) { e.Time = time.Time{} }},
		{name: "year 10000", edit: func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{name: "negative duration", edit: func(e *Entry) { e.Duration = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"plain", "json"} {
				for _, level := range levels {
					e := base
					tc.edit(&e)
					if fast := checkSame(t, format, level, e); fast != tc.fast {
						t.Errorf("%s: appendLine formatted it: %v, want %v", format, fast, tc.fast)
					}
				}
			}
		})
	}
	if _, ok := appendLine(nil, "logfmt", slog.LevelInfo, base); ok {
		t.Error("appendLine formatted an unknown format")
	}
}

// TestFastLineRandom compares both on random entries drawn from a set of
// characters where every rule of both handlers' quoting applies.
func TestFastLineRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(7, 11))
	const chars = "abcXYZ019-_./:@%+~ =\"\\<>&\x00\x7f\u00e9\u2028"
	str := func() string {
		n := rng.IntN(6)
		b := make([]rune, n)
		r := []rune(chars)
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = r[rng.IntN(len(r))]
			} else {
				b[i] = r[rng.IntN(12)]
			}
		}
		return string(b)
	}
	fast := 0
	for i := 0; i < 20000; i++ {
		e := Entry{Time: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)), RequestID: str(), Method: str(), Path: str(),
			Status: 100 + rng.IntN(500), Duration: time.Duration(rng.Int64N(1 << (10 + rng.IntN(40)))), RemoteAddr: str(), Principal: str()}
		if checkSame(t, []string{"plain", "json"}[i%2], levels[rng.IntN(len(levels))], e) {
			fast++
		}
	}
	if fast < 1000 {
		t.Errorf("only %d of 20000 random entries took the fast path", fast)
	}
}

func FuzzFastLine(f *testing.F) {
	f.Add(int64(1796296718), int64(212345678), "req-1", "GET", "/v2/workspaces", 200, int64(57000), "127.0.0.1:1", "alice", "", true)
	f.Add(int64(0), int64(0), "", "", "/a b", 404, int64(-1), "", "x=y", "token=a", false)
	f.Fuzz(func(t *testing.T, sec, nsec int64, id, method, path string, status int, dur int64, remote, principal, query string, json bool) {
		format := "plain"
		if json {
			format = "json"
		}
		e := Entry{Time: time.Unix(sec, nsec), RequestID: id, Method: method, Path: path, Status: status,
			Duration: time.Duration(dur), RemoteAddr: remote, Principal: principal, RawQuery: query}
		checkSame(t, format, slog.LevelInfo, e)
	})
}

// BenchmarkLine compares the handler with the writer's own formatting.
func BenchmarkLine(b *testing.B) {
	e := Entry{Time: time.Now(), RequestID: "a3737f52-86b2-43af-b1cc-da2bf8e6739b", Method: "POST",
		Path: "/apis/auth/v2/authz/allow", Status: 200, Duration: 57 * time.Microsecond, RemoteAddr: "192.0.2.1:1234",
		Principal: "service:gateway"}
	l := &Logger{level: slog.LevelInfo}
	b.Run("slog", func(b *testing.B) {
		h := slog.NewTextHandler(io.Discard, nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = h.Handle(context.Background(), l.record(e))
		}
	})
	b.Run("appendLine", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf, _ = appendLine(buf[:0], "plain", slog.LevelInfo, e)
		}
	})
}
