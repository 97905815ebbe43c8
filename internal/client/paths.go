package client

import (
	"net/url"
	"strings"
)

// entitiesPrefix is the canonical route prefix of the entity store.
const entitiesPrefix = "/apis/entities/v2"

// escapePath joins path segments, escaping each so that "/" and the
// wildcard principal "*" (as %2A) stay inside their segment.
func escapePath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		// url.PathEscape escapes everything but unreserved characters and
		// "$&+,:;=@", so "*" becomes %2A and "/" becomes %2F
		// (TestEscapePath pins this).
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func workspacesPath(segments ...string) string {
	return entitiesPrefix + "/workspaces" + escapePath(segments...)
}
