// Package apierror is the one error type that reaches HTTP clients:
// {"detail": ..., "code": ...}, optionally with field errors. Every layer
// that rejects a request returns one; the API renders it in one place.
package apierror

import (
	"fmt"
	"net/http"
)

// FieldError locates one validation problem, FastAPI style.
type FieldError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// Error is an error with an HTTP status and a stable machine code.
type Error struct {
	Status int
	Code   string
	Detail string
	Errors []FieldError
	// Extra fields merged into the JSON body (e.g. valid_entrypoints).
	Extra map[string]any
}

func (e *Error) Error() string { return e.Detail }

// New builds an error.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with the given code.
func BadRequest(code, format string, args ...any) *Error {
	return New(http.StatusBadRequest, code, format, args...)
}

// Validation is a 422 validation_error for one field; loc is the path of
// the field, e.g. ("body", "name") or ("query", "page_size").
func Validation(msg string, loc ...string) *Error {
	detail := msg
	if len(loc) > 0 {
		detail = fmt.Sprintf("%s: %s", loc[len(loc)-1], msg)
	}
	return &Error{
		Status: http.StatusUnprocessableEntity,
		Code:   "validation_error",
		Detail: detail,
		Errors: []FieldError{{Loc: loc, Msg: msg, Type: "value_error"}},
	}
}

// Body renders the JSON object sent to the client.
func (e *Error) Body() map[string]any {
	b := make(map[string]any, 3+len(e.Extra))
	for k, v := range e.Extra {
		b[k] = v
	}
	b["detail"] = e.Detail
	if e.Code != "" {
		b["code"] = e.Code
	}
	if len(e.Errors) > 0 {
		b["errors"] = e.Errors
	}
	return b
}
