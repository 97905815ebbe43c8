package client

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// VerboseTransport wraps base (http.DefaultTransport when nil) so that each
// request is logged to w like the API client's --verbose lines: method,
// URL with secret query values redacted, status and duration; never
// headers or bodies. With a nil w it returns base unchanged.
func VerboseTransport(base http.RoundTripper, w io.Writer) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if w == nil {
		return base
	}
	return &verboseTransport{base: base, w: w}
}

type verboseTransport struct {
	base http.RoundTripper
	w    io.Writer
}

func (t *verboseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		fmt.Fprintf(t.w, "nmp: %s %s -> failed (%s)\n", req.Method, logURL(req.URL), since(start))
		return nil, err
	}
	fmt.Fprintf(t.w, "nmp: %s %s -> %d (%s)\n", req.Method, logURL(req.URL), resp.StatusCode, since(start))
	return resp, nil
}
