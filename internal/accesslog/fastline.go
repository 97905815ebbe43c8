package accesslog

import (
	"log/slog"
	"strconv"
	"time"
)

// The writer formats most lines without log/slog: appendLine writes the
// bytes slog's TextHandler ("plain") or JSONHandler ("json") would write
// for the record of record(), when every value is one whose encoding is
// plain (printable ASCII that needs no quoting or escaping, a time within
// years 0-9999, a duration the JSON encoder writes in fixed notation).
// Any other entry goes through the handler, so the output is the
// handler's by construction; TestFastLineMatchesSlog and FuzzFastLine
// compare both byte for byte.

// appendLine appends e's line in format; ok is false when the handler
// must format it.
func appendLine(b []byte, format string, level slog.Level, e Entry) (_ []byte, ok bool) {
	if e.Time.IsZero() || e.Time.Year() < 0 || e.Time.Year() >= 10000 || e.RawQuery != "" || e.Duration < 0 {
		return b, false // (a query is redacted and re-encoded: the handler's)
	}
	ms := float64(e.Duration.Microseconds()) / 1000
	if ms != 0 && ms < 1e-6 || ms >= 1e21 {
		return b, false
	}
	for i, s := range [...]string{e.Principal, e.RequestID, e.Method, e.Path, e.RemoteAddr} {
		if !plainValue(s) || s == "" && i > 0 { // an empty principal is left out, other values are quoted
			return b, false
		}
	}
	switch format {
	case "plain":
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, e.Time)
		b = append(b, " level="...)
		b = append(b, level.String()...)
		b = append(b, " msg=request request_id="...)
		b = append(b, e.RequestID...)
		b = append(b, " method="...)
		b = append(b, e.Method...)
		b = append(b, " path="...)
		b = append(b, e.Path...)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
		b = append(b, " duration_ms="...)
		b = strconv.AppendFloat(b, ms, 'g', -1, 64)
		b = append(b, " remote_addr="...)
		b = append(b, e.RemoteAddr...)
		if e.Principal != "" {
			b = append(b, " principal="...)
			b = append(b, e.Principal...)
		}
	case "json":
		b = append(b, `{"time":"`...)
		b = e.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		b = append(b, level.String()...)
		b = append(b, `","msg":"request","request_id":"`...)
		b = append(b, e.RequestID...)
		b = append(b, `","method":"`...)
		b = append(b, e.Method...)
		b = append(b, `","path":"`...)
		b = append(b, e.Path...)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, ms, 'f', -1, 64)
		b = append(b, `,"remote_addr":"`...)
		b = append(b, e.RemoteAddr...)
		b = append(b, '"')
		if e.Principal != "" {
			b = append(b, `,"principal":"`...)
			b = append(b, e.Principal...)
			b = append(b, '"')
		}
		b = append(b, '}')
	default:
		return b, false
	}
	return append(b, '\n'), true
}

// plainValue reports whether s, unless empty, is written as is by both
// handlers: printable ASCII without a space, quote, backslash, '='
// (quoted in text) or '<', '>', '&' (left to the handler, whatever it
// does with them).
func plainValue(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f, c == '"', c == '\\', c == '=', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendRFC3339Millis is the text handler's time: RFC 3339 in the time's
// location, truncated to exactly three fractional digits.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Round(0).Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}
