package authz

import (
	"net/url"
	"strings"
)

// CanonicalPath applies authz.md's canonical path rules to an escaped
// request path: the /v2/workspaces alias gets the /apis/entities prefix,
// one trailing slash is dropped, and an empty, "." or ".." segment (after
// percent-decoding each segment on its own) or a bad escape makes the path
// invalid. It works on the escaped form, so %2F stays in its segment.
func CanonicalPath(escaped string) (string, bool) {
	canonical, ok := canonicalForm(escaped)
	if !ok || !eachSegment(canonical, func(int, string) {}) {
		return "", false
	}
	return canonical, true
}

func canonicalSegments(escaped string) (string, []string, bool) {
	canonical, ok := canonicalForm(escaped)
	if !ok {
		return "", nil, false
	}
	segs, ok := decodeSegments(canonical)
	if !ok {
		return "", nil, false
	}
	return canonical, segs, true
}

// canonicalForm is the escaped path after the alias and trailing-slash
// rules, before its segments are checked.
func canonicalForm(escaped string) (string, bool) {
	if i := strings.IndexAny(escaped, "?#"); i >= 0 {
		escaped = escaped[:i]
	}
	if !strings.HasPrefix(escaped, "/") {
		return "", false
	}
	if escaped == "/v2/workspaces" || strings.HasPrefix(escaped, "/v2/workspaces/") {
		escaped = "/apis/entities" + escaped
	}
	if len(escaped) > 1 {
		escaped = strings.TrimSuffix(escaped, "/")
	}
	return escaped, true
}

// decodeSegments splits a canonical escaped path into decoded segments
// ("%XX" escapes only; "+" stays literal). "/" has no segments.
func decodeSegments(escaped string) ([]string, bool) {
	if escaped == "/" {
		return nil, true
	}
	segs := make([]string, strings.Count(escaped, "/"))
	if !eachSegment(escaped, func(i int, d string) { segs[i] = d }) {
		return nil, false
	}
	return segs, true
}

// eachSegment calls f with the index and decoded value of each segment
// of escaped (which starts with "/"; "/" has none), and reports false at
// the first bad escape or empty, "." or ".." segment. It allocates only
// to decode a segment that holds an escape.
func eachSegment(escaped string, f func(i int, decoded string)) bool {
	if escaped == "/" {
		return true
	}
	rest := escaped[1:]
	for i := 0; ; i++ {
		s, after, more := strings.Cut(rest, "/")
		d := s
		if strings.IndexByte(s, '%') >= 0 {
			var err error
			if d, err = url.PathUnescape(s); err != nil {
				return false
			}
		}
		if d == "" || d == "." || d == ".." {
			return false
		}
		f(i, d)
		if !more {
			return true
		}
		rest = after
	}
}

// requestPath canonicalizes an input path and decodes its segments.
func requestPath(path string) (canonical string, segs []string, ok bool) {
	return canonicalSegments(path)
}
