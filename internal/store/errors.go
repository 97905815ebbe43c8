package store

import (
	"errors"
	"fmt"
)

// Kind classifies an expected store outcome; the API maps kinds to HTTP
// statuses in one place.
type Kind int

// Error kinds.
const (
	KindNotFound Kind = iota + 1
	KindConflict
	KindInvalid
)

// Sentinels for errors.Is: errors.Is(err, store.ErrNotFound) is true for
// every *Error of kind KindNotFound, whatever its code. A sentinel with a
// code (ErrInvalidState) matches only errors of its kind and code.
var (
	ErrNotFound = &Error{Kind: KindNotFound}
	ErrConflict = &Error{Kind: KindConflict}
	ErrInvalid  = &Error{Kind: KindInvalid}
	// ErrInvalidState is a write refused because of the resource's current
	// state (an access key that cannot make the asked transition). It is
	// a conflict too: errors.Is(err, ErrConflict) holds as well.
	ErrInvalidState = &Error{Kind: KindConflict, Code: "invalid_state"}
)

// Error is an expected failure with a stable machine code (api.md) and a
// message safe to show to the caller.
type Error struct {
	Kind   Kind
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Is reports whether target is a sentinel of the same kind (and, for a
// sentinel with a code, the same code).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Detail == "" && t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

func newErr(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// NotFound returns a KindNotFound error.
func NotFound(code, format string, args ...any) *Error {
	return newErr(KindNotFound, code, format, args...)
}

// Conflict returns a KindConflict error.
func Conflict(code, format string, args ...any) *Error {
	return newErr(KindConflict, code, format, args...)
}

// Invalid returns a KindInvalid error.
func Invalid(code, format string, args ...any) *Error {
	return newErr(KindInvalid, code, format, args...)
}

// WorkspaceNotFound is the error for a missing workspace.
func WorkspaceNotFound(name string) *Error {
	return NotFound("not_found", "Workspace '%s' not found", name)
}

// InvalidState returns an error that matches ErrInvalidState.
func InvalidState(format string, args ...any) *Error {
	return newErr(KindConflict, ErrInvalidState.Code, format, args...)
}

// AccessKeyNotFound is the error for a missing access key.
func AccessKeyNotFound(jti string) *Error {
	return NotFound("not_found", "Access key '%s' not found", jti)
}

// CodeOf returns the machine code of a store error, or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrUnavailable is a store operation that failed because the database
// could not be reached or did not answer in time (connection refused or
// lost, the server shutting down, no pooled connection free within the
// pool wait, the operation timeout). The caller may
// retry later; the API answers 503 with Retry-After.
var ErrUnavailable = errors.New("entity store unavailable")

// ErrInsufficientStorage is a write the database refused because its
// disk is full (or failed to write it). Reads keep working; the API
// answers 507.
var ErrInsufficientStorage = errors.New("entity store out of storage")
