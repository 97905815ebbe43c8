package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"unicode/utf8"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
)

// The lean request path of the PDP entrypoints and the gateway callout
// (docs/benchmarks.md "Lean request path (issue 15)"): bodies are read
// into pooled buffers; the common well-formed PDP body is decoded in one
// pass by a strict reader; the small fixed answers are written without
// reflection, byte for byte what encoding/json writes.
//
// The one-pass reader accepts only what the validating reader
// (readPDPInput and the entrypoint's input conversion) accepts with the
// same result: the body {"input": {...}} whose input members are among
// the entrypoints' known members, each a string, a list of strings or
// null, strings without escapes or control characters, no member twice,
// and whose required members are present. Anything else (the Envoy form,
// unknown members, escapes, other types, duplicates, a missing member,
// malformed JSON) goes to the validating reader, so the acceptance and
// every error response are the validating reader's by construction;
// FuzzPDPFastInput checks that both readers agree.

// bufPool holds the buffers bodies are read into and answers encoded in.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf returns a buffer to the pool; very large ones are dropped so the
// pool does not pin a big body's memory.
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		bufPool.Put(b)
	}
}

// readBody reads the request body into a pooled buffer; the caller puts
// it back and must not keep references into its bytes.
func readBody(r *http.Request) (*bytes.Buffer, error) {
	b := getBuf()
	if _, err := b.ReadFrom(r.Body); err != nil {
		putBuf(b)
		return nil, err
	}
	return b, nil
}

// pdpFields are the members of the three entrypoints' inputs.
type pdpFields struct {
	principalID, principalEmail, onBehalfOf, method, path, workspace, role string
	groups, scopes, permissions                                            []string
}

// pdpRequest is the typed input of one entrypoint.
type pdpRequest struct {
	allow authz.Input
	perms authz.PermissionsInput
	role  authz.RoleInput
}

// fastPDPInput decodes body in one pass; ok is false whenever the
// validating reader must decide (see above).
func fastPDPInput(entrypoint string, body []byte) (q pdpRequest, ok bool) {
	// one copy of the body: every name and value is a substring of it
	s := scanner{b: body, src: string(body)}
	if !s.next('{') {
		return q, false
	}
	if name, ok := s.str(); !ok || name != "input" || !s.next(':') || !s.next('{') {
		return q, false
	}
	var f pdpFields
	var seen uint16
	if !s.next('}') {
		for {
			name, ok := s.str()
			if !ok || !s.next(':') {
				return q, false
			}
			bit, str, list := f.member(name)
			if bit == 0 || seen&bit != 0 {
				return q, false
			}
			seen |= bit
			switch {
			case s.null():
			case str != nil:
				if *str, ok = s.str(); !ok {
					return q, false
				}
			default:
				if *list, ok = s.list(); !ok {
					return q, false
				}
			}
			if s.next('}') {
				break
			}
			if !s.next(',') {
				return q, false
			}
		}
	}
	if !s.next('}') || !s.end() {
		return q, false
	}
	return f.request(entrypoint)
}

// member maps an input member to its bit and destination.
func (f *pdpFields) member(name string) (bit uint16, str *string, list *[]string) {
	switch name {
	case "principal_id":
		return 1 << 0, &f.principalID, nil
	case "principal_email":
		return 1 << 1, &f.principalEmail, nil
	case "on_behalf_of_principal_id":
		return 1 << 2, &f.onBehalfOf, nil
	case "method":
		return 1 << 3, &f.method, nil
	case "path":
		return 1 << 4, &f.path, nil
	case "workspace":
		return 1 << 5, &f.workspace, nil
	case "role":
		return 1 << 6, &f.role, nil
	case "principal_groups":
		return 1 << 7, nil, &f.groups
	case "scopes":
		return 1 << 8, nil, &f.scopes
	case "permissions":
		return 1 << 9, nil, &f.permissions
	}
	return 0, nil, nil
}

// request builds the entrypoint's input when it is valid (the checks of
// allowInput, permissionsInput and roleInput).
func (f *pdpFields) request(entrypoint string) (q pdpRequest, ok bool) {
	switch entrypoint {
	case "allow":
		if f.method == "" || f.path == "" {
			return q, false
		}
		for _, sc := range f.scopes {
			if ident.PermissionShaped(sc) {
				return q, false
			}
		}
		q.allow = authz.Input{PrincipalID: f.principalID, PrincipalEmail: f.principalEmail, PrincipalGroups: f.groups,
			OnBehalfOf: f.onBehalfOf, Method: f.method, Path: f.path, Scopes: f.scopes}
	case "has_permissions":
		if f.principalID == "" || f.workspace == "" || len(f.permissions) == 0 {
			return q, false
		}
		q.perms = authz.PermissionsInput{PrincipalID: f.principalID, PrincipalEmail: f.principalEmail,
			PrincipalGroups: f.groups, OnBehalfOf: f.onBehalfOf, Workspace: f.workspace, Permissions: f.permissions}
	case "has_role":
		if f.principalID == "" || f.workspace == "" || f.role == "" {
			return q, false
		}
		q.role = authz.RoleInput{PrincipalID: f.principalID, PrincipalEmail: f.principalEmail,
			PrincipalGroups: f.groups, Workspace: f.workspace, Role: f.role}
	default:
		return q, false
	}
	return q, true
}

// scanner reads the subset of JSON the one-pass reader accepts.
type scanner struct {
	b   []byte
	src string // b as a string: the strings read are its substrings
	i   int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c after white space.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// null consumes a null literal.
func (s *scanner) null() bool {
	s.space()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (s *scanner) str() (string, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			s.i = j + 1
			return s.src[start:j], true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// list reads a list of such strings; [] is an empty, non-nil list, as
// encoding/json decodes it.
func (s *scanner) list() ([]string, bool) {
	if !s.next('[') {
		return nil, false
	}
	out := []string{}
	if s.next(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.next(']') {
			return out, true
		}
		if !s.next(',') {
			return nil, false
		}
	}
}

// appendJSONString appends v as encoding/json encodes it (HTML-safe).
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(v) // escapes and invalid UTF-8: the encoder's rules
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// appendJSONStrings appends a list of strings ([] for none).
func appendJSONStrings(b []byte, xs []string) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, x)
	}
	return append(b, ']')
}

// appendJSONBool appends true or false.
func appendJSONBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// writeJSONBytes writes an encoded answer the way writeJSON does.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		slog.Debug("write response", "error", err)
	}
}

// writePooled writes b, appended to out's available buffer, with status
// 200, and keeps b's array in out so a grown one goes back to the pool.
func writePooled(w http.ResponseWriter, out *bytes.Buffer, b []byte) {
	writeJSONBytes(w, http.StatusOK, b)
	out.Write(b)
}
