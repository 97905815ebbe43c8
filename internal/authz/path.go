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
	canonical, _, ok := canonicalSegments(escaped)
	return canonical, ok
}

func canonicalSegments(escaped string) (string, []string, bool) {
	if i := strings.IndexAny(escaped, "?#"); i >= 0 {
		escaped = escaped[:i]
	}
	if !strings.HasPrefix(escaped, "/") {
		return "", nil, false
	}
	if escaped == "/v2/workspaces" || strings.HasPrefix(escaped, "/v2/workspaces/") {
		escaped = "/apis/entities" + escaped
	}
	if len(escaped) > 1 {
		escaped = strings.TrimSuffix(escaped, "/")
	}
	segs, ok := decodeSegments(escaped)
	if !ok {
		return "", nil, false
	}
	return escaped, segs, true
}

// decodeSegments splits a canonical escaped path into decoded segments
// ("%XX" escapes only; "+" stays literal). "/" has no segments.
func decodeSegments(escaped string) ([]string, bool) {
	if escaped == "/" {
		return nil, true
	}
	rest := escaped[1:]
	segs := make([]string, strings.Count(rest, "/")+1)
	for i := range segs {
		var s string
		s, rest, _ = strings.Cut(rest, "/")
		d := s
		if strings.IndexByte(s, '%') >= 0 {
			var err error
			if d, err = url.PathUnescape(s); err != nil {
				return nil, false
			}
		}
		if d == "" || d == "." || d == ".." {
			return nil, false
		}
		segs[i] = d
	}
	return segs, true
}

// requestPath canonicalizes an input path and decodes its segments.
func requestPath(path string) (canonical string, segs []string, ok bool) {
	return canonicalSegments(path)
}
