package client

import (
	"errors"
	"fmt"
	"net/url"
)

// APIError is a non-2xx response from the server, decoded from the
// {"detail": "...", "code": "..."} error body.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Detail is the server's message (the status text when the body has none).
	Detail string
	// Code is the machine-readable error code; empty when the server sent none.
	Code string
}

// Error returns the server's detail message.
func (e *APIError) Error() string { return e.Detail }

// DeniedError is a 403 whose body explains the refusal: the server's
// reason, the caller as the server identified it, and what the endpoint
// asks (permissions in a workspace, or scopes). It wraps the *APIError,
// so errors.As finds either.
type DeniedError struct {
	*APIError
	// Method and Path are the refused request's (Path escaped, no query).
	Method, Path string
	// Reason is the decision point's rule, e.g. permission_missing.
	Reason string
	// Principal and Email are the caller as the server identified it.
	Principal, Email string
	// RequiredPermissions are checked in Workspace ("w/p": in w).
	RequiredPermissions []string
	Workspace           string
	// RequiredScopes: a token with colon scopes needs one of them.
	RequiredScopes []string
}

// Unwrap returns the underlying API error.
func (e *DeniedError) Unwrap() error { return e.APIError }

// NetworkError is a request that got no HTTP response: connection refused,
// DNS failure, TLS failure, timeout or cancellation.
type NetworkError struct {
	// Method is the HTTP method of the failed request.
	Method string
	// URL is the request URL with secrets removed.
	URL string
	// Err is the underlying transport error.
	Err error
}

// Error describes the failure without repeating the full URL.
func (e *NetworkError) Error() string {
	target := e.URL
	if u, err := url.Parse(e.URL); err == nil {
		target = u.Scheme + "://" + u.Host
	}
	return fmt.Sprintf("cannot reach %s: %v", target, e.Err)
}

// Unwrap returns the transport error.
func (e *NetworkError) Unwrap() error { return e.Err }

// ResponseError is a 2xx response whose body could not be decoded.
type ResponseError struct {
	// Status is the HTTP status code.
	Status int
	// Err is the decoding error.
	Err error
}

// Error describes the malformed response.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("invalid response from server (HTTP %d): %v", e.Status, e.Err)
}

// Unwrap returns the decoding error.
func (e *ResponseError) Unwrap() error { return e.Err }

// unwrapURLError strips net/http's *url.Error wrapper, whose message repeats
// the method and full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
