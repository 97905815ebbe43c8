package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// field is one accepted member of a JSON request object.
type field struct {
	name     string
	dst      any // pointer to the typed destination
	required bool
}

// presence is implemented by destinations that must know whether their
// member was sent at all, null included (where absent and null mean
// different things).
type presence interface{ markPresent() }

// nullableInt is an optional integer member that may be null: Given
// tells absent (false) from sent, Value nil is null.
type nullableInt struct {
	Given bool
	Value *int
}

func (n *nullableInt) markPresent() { n.Given = true }

// UnmarshalJSON implements json.Unmarshaler.
func (n *nullableInt) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &n.Value) }

var (
	errEmptyBody = errors.New("empty request body")
	errNotObject = errors.New("request body is not a JSON object")
)

// readObject reads a request body that must be one JSON object and
// returns its members undecoded. Malformed JSON is 400 invalid_json; an
// oversized body the *http.MaxBytesError (413); an empty body or another
// JSON value errEmptyBody / errNotObject, which callers map to their own
// status.
func readObject(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return parseObject(body)
}

// parseObject is readObject on a body already read.
func parseObject(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errEmptyBody
	}
	if !json.Valid(body) {
		return nil, apierror.BadRequest("invalid_json", "Request body is not valid JSON")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return nil, errNotObject
	}
	return members, nil
}

// decodeBody reads a JSON object whose members must be among fields.
// Malformed JSON is 400 invalid_json; an unknown member, a wrong type, a
// null or missing required member is 422 naming the field. All field
// problems are reported together.
func decodeBody(r *http.Request, fields ...field) error {
	return decodeObject(r, false, fields...)
}

// decodeOptionalBody is decodeBody for a request whose body may be left
// out: an empty body is the empty object.
func decodeOptionalBody(r *http.Request, fields ...field) error {
	return decodeObject(r, true, fields...)
}

func decodeObject(r *http.Request, optional bool, fields ...field) error {
	members, err := readObject(r)
	switch {
	case errors.Is(err, errEmptyBody) && optional:
		members = map[string]json.RawMessage{}
	case errors.Is(err, errEmptyBody):
		return apierror.Validation("request body is required", "body")
	case errors.Is(err, errNotObject):
		return apierror.Validation("request body must be a JSON object", "body")
	case err != nil:
		return err
	}
	known := make(map[string]field, len(fields))
	for _, f := range fields {
		known[f.name] = f
	}
	var errs []apierror.FieldError
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := known[name]; !ok {
			errs = append(errs, apierror.FieldError{Loc: []string{"body", name}, Msg: "unknown field", Type: "extra_forbidden"})
		}
	}
	for _, f := range fields {
		raw, present := members[f.name]
		isNull := present && string(bytes.TrimSpace(raw)) == "null"
		if p, ok := f.dst.(presence); ok && present {
			p.markPresent()
		}
		switch {
		case !present || isNull:
			if f.required {
				msg := "field required"
				if isNull {
					msg = "must not be null"
				}
				errs = append(errs, apierror.FieldError{Loc: []string{"body", f.name}, Msg: msg, Type: "missing"})
			}
		default:
			if err := json.Unmarshal(raw, f.dst); err != nil {
				errs = append(errs, apierror.FieldError{Loc: []string{"body", f.name}, Msg: typeMessage(err), Type: "type_error"})
			}
		}
	}
	return fieldErrors(errs)
}

func typeMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "must be of type " + jsonType(te.Type.String())
	}
	return "invalid value"
}

func jsonType(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "string"
	case strings.Contains(goType, "[]string"):
		return "array of strings"
	case strings.Contains(goType, "int"):
		return "integer"
	case strings.Contains(goType, "bool"):
		return "boolean"
	}
	return "object"
}

// fieldErrors turns collected field problems into one 422, or nil.
func fieldErrors(errs []apierror.FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Loc[len(e.Loc)-1] + ": " + e.Msg
	}
	return &apierror.Error{Status: http.StatusUnprocessableEntity, Code: "validation_error",
		Detail: strings.Join(parts, "; "), Errors: errs}
}
