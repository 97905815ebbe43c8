package bundle

import (
	"strconv"
	"strings"
	"time"
)

// MaxWait caps the long-polling wait a client may ask for.
const MaxWait = 300 * time.Second

// NoneMatch reports whether an If-None-Match value (the request's header
// lines joined with ",") matches etag (quoted, as Build makes it) under
// weak comparison: the value is a comma-separated list of entity tags,
// quoted or bare, each optionally prefixed with W/; "*" matches any tag.
// An empty or blank value matches nothing (the header is absent). The
// value is untrusted: anything that is not a tag is skipped.
func NoneMatch(value, etag string) bool {
	want := opaque(etag)
	if want == "" {
		return false
	}
	for tag, star := range entityTags(value) {
		if star || tag == want {
			return true
		}
	}
	return false
}

// opaque strips W/ and the quotes of one tag.
func opaque(tag string) string {
	tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		return tag[1 : len(tag)-1]
	}
	return tag
}

// entityTags yields the opaque part of each tag in a list: the text
// between the quotes of a quoted tag (which may hold commas), or a bare
// tag up to the next comma or blank, with W/ dropped; star is true for a
// bare "*". An unterminated quote takes the rest of the value.
func entityTags(value string) func(yield func(tag string, star bool) bool) {
	return func(yield func(string, bool) bool) {
		i := 0
		for i < len(value) {
			c := value[i]
			if c == ',' || c == ' ' || c == '\t' {
				i++
				continue
			}
			if strings.HasPrefix(value[i:], "W/") {
				i += 2
			}
			var tag string
			quoted := i < len(value) && value[i] == '"'
			if quoted {
				end := strings.IndexByte(value[i+1:], '"')
				if end < 0 {
					tag, i = value[i+1:], len(value)
				} else {
					tag, i = value[i+1:i+1+end], i+2+end
				}
			} else {
				end := strings.IndexAny(value[i:], ", \t")
				if end < 0 {
					end = len(value) - i
				}
				tag, i = value[i:i+end], i+end
			}
			if tag != "" && !yield(tag, !quoted && tag == "*") {
				return
			}
		}
	}
}

// PreferWait is the wait preference of Prefer header lines (RFC 7240;
// OPA sends "modes=snapshot,delta;wait=30"): the first "wait" preference,
// a whole number of seconds, capped at MaxWait. ok is false when there is
// none or it is not a positive integer: the client then gets an answer at
// once.
func PreferWait(lines []string) (wait time.Duration, ok bool) {
	for _, line := range lines {
		for part := range strings.FieldsFuncSeq(line, func(r rune) bool { return r == ',' || r == ';' }) {
			name, val, found := strings.Cut(part, "=")
			if !found || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			val = strings.TrimSpace(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || n == 0 {
				return 0, false
			}
			if n >= uint64(MaxWait/time.Second) {
				return MaxWait, true
			}
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}
