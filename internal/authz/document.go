package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/ident"
)

// Endpoint is the authorization entry of one pattern and method.
type Endpoint struct {
	Permissions []string `yaml:"permissions" json:"permissions"`
	Scopes      []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	Public      bool     `yaml:"public,omitempty" json:"public,omitempty"`
	Callers     []string `yaml:"callers,omitempty" json:"callers,omitempty"`
	Deny        bool     `yaml:"deny,omitempty" json:"deny,omitempty"`
}

// Callers values.
const (
	CallersServicePrincipal = "service_principal"
	CallersPrincipal        = "principal"
)

// PolicyConfig is the document's config section.
type PolicyConfig struct {
	DeniedPrefixes []string `yaml:"denied_prefixes" json:"denied_prefixes"`
}

// Document is the static part of the policy data (authz.md "Policy data
// document"): the built-in data merged with operator extra data. Role
// bindings are added separately as principals.
type Document struct {
	Permissions map[string]any                 `yaml:"permissions" json:"permissions"`
	Roles       map[string]Role                `yaml:"roles" json:"roles"`
	Endpoints   map[string]map[string]Endpoint `yaml:"endpoints" json:"endpoints"`
	Config      PolicyConfig                   `yaml:"config" json:"config"`
}

// Role is a named permission set that may include other roles.
type Role struct {
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Includes    []string `yaml:"includes,omitempty" json:"includes,omitempty"`
	Permissions []string `yaml:"permissions" json:"permissions"`
}

var methods = map[string]bool{"get": true, "head": true, "post": true, "put": true, "patch": true, "delete": true, "options": true}

// StaticDocument parses the embedded built-in data.
func StaticDocument() (*Document, error) {
	doc, err := parseDocument(staticData, "embedded static data")
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate()
}

func parseDocument(data []byte, name string) (*Document, error) {
	var doc Document
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &doc, nil
}

// LoadDocument returns the static data merged with the operator's extra
// data files (YAML or JSON), validated. Any error names the file.
func LoadDocument(extraFiles []string) (*Document, error) {
	doc, err := StaticDocument()
	if err != nil {
		return nil, err
	}
	for _, f := range extraFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("extra authz data: %w", err)
		}
		if err := doc.MergeExtra(data, filepath.Base(f)); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// MergeExtra merges one extra data document (authz.md "Operator extra
// authz data") into d and validates the result.
func (d *Document) MergeExtra(data []byte, name string) error {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("extra authz data %s: %w", name, err)
	}
	if _, ok := raw["principals"]; ok {
		return fmt.Errorf("extra authz data %s: principals cannot be set (they come from role bindings)", name)
	}
	extra, err := parseDocument(data, "extra authz data "+name)
	if err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("extra authz data %s: %s", name, fmt.Sprintf(format, args...))
	}
	newPerms := flattenPermissions(extra.Permissions, "")
	existing := flattenPermissions(d.Permissions, "")
	for id, desc := range newPerms {
		if old, ok := existing[id]; ok && !reflect.DeepEqual(old, desc) {
			return fail("permission %s is already defined differently", id)
		}
	}
	if err := mergePermissionTree(&d.Permissions, extra.Permissions); err != nil {
		return fail("%v", err)
	}
	for name, r := range extra.Roles {
		switch name {
		case RolePlatformAdmin, RoleServiceSystem:
			return fail("role %s is immutable", name)
		case "*":
			return fail("role name * is not allowed")
		}
		cur := d.Roles[name]
		if cur.Description == "" {
			cur.Description = r.Description
		}
		cur.Includes = union(cur.Includes, r.Includes)
		cur.Permissions = union(cur.Permissions, r.Permissions)
		d.Roles[name] = cur
	}
	for pattern, byMethod := range extra.Endpoints {
		if d.Endpoints[pattern] == nil {
			d.Endpoints[pattern] = map[string]Endpoint{}
		}
		for m, ep := range byMethod {
			if _, dup := d.Endpoints[pattern][m]; dup {
				return fail("endpoint %s %s is already defined", strings.ToUpper(m), pattern)
			}
			d.Endpoints[pattern][m] = ep
		}
	}
	d.Config.DeniedPrefixes = append(d.Config.DeniedPrefixes, extra.Config.DeniedPrefixes...)
	if err := d.Validate(); err != nil {
		return fail("%v", err)
	}
	return nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// flattenPermissions maps permission ids to their leaf objects.
func flattenPermissions(tree map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range tree {
		id := k
		if prefix != "" {
			id = prefix + "." + k
		}
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if isLeaf(m) {
			out[id] = m
			continue
		}
		for sub, leaf := range flattenPermissions(m, id) {
			out[sub] = leaf
		}
	}
	return out
}

func isLeaf(m map[string]any) bool {
	_, ok := m["description"].(string)
	return ok
}

func mergePermissionTree(dst *map[string]any, src map[string]any) error {
	if *dst == nil {
		*dst = map[string]any{}
	}
	for k, v := range src {
		sv, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("permissions.%s must be an object", k)
		}
		dv, exists := (*dst)[k].(map[string]any)
		if !exists || isLeaf(sv) || isLeaf(dv) {
			(*dst)[k] = sv
			continue
		}
		if err := mergePermissionTree(&dv, sv); err != nil {
			return err
		}
		(*dst)[k] = dv
	}
	return nil
}

// PermissionIDs returns every declared permission id, sorted.
func (d *Document) PermissionIDs() []string {
	flat := flattenPermissions(d.Permissions, "")
	ids := make([]string, 0, len(flat))
	for id := range flat {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// maxIncludeDepth bounds role include chains.
const maxIncludeDepth = 5

// Validate checks the document: permission ids, role references, include
// cycles and depth, endpoint methods, permissions and scopes, and
// ambiguous endpoint patterns.
func (d *Document) Validate() error {
	var errs []error
	declared := map[string]bool{}
	for _, id := range d.PermissionIDs() {
		if !ident.PermissionShaped(id) {
			errs = append(errs, fmt.Errorf("permission id %q is malformed", id))
		}
		declared[id] = true
	}
	for name, r := range d.Roles {
		for _, inc := range r.Includes {
			if _, ok := d.Roles[inc]; !ok {
				errs = append(errs, fmt.Errorf("role %s includes unknown role %s", name, inc))
			}
		}
		for _, p := range r.Permissions {
			if p != "*" && !declared[p] {
				errs = append(errs, fmt.Errorf("role %s grants undeclared permission %s", name, p))
			}
		}
		if depth, err := d.includeDepth(name, nil); err != nil {
			errs = append(errs, err)
		} else if depth > maxIncludeDepth {
			errs = append(errs, fmt.Errorf("role %s has an include chain deeper than %d", name, maxIncludeDepth))
		}
	}
	if len(d.Roles) > maxRoles {
		errs = append(errs, fmt.Errorf("at most %d roles can be defined", maxRoles))
	}
	for pattern, byMethod := range d.Endpoints {
		if _, err := compilePattern(pattern); err != nil {
			errs = append(errs, err)
		}
		for m, ep := range byMethod {
			if !methods[m] {
				errs = append(errs, fmt.Errorf("endpoint %s: unknown method %q (use lower case)", pattern, m))
			}
			for _, p := range ep.Permissions {
				if _, perm, ok := strings.Cut(p, "/"); ok {
					p = perm
				}
				if !declared[p] {
					errs = append(errs, fmt.Errorf("endpoint %s %s: undeclared permission %s", strings.ToUpper(m), pattern, p))
				}
			}
			for _, s := range ep.Scopes {
				if !ident.ValidScope(s) {
					errs = append(errs, fmt.Errorf("endpoint %s %s: scope %q must look like group:access", strings.ToUpper(m), pattern, s))
				}
			}
			for _, c := range ep.Callers {
				if c != CallersPrincipal && c != CallersServicePrincipal {
					errs = append(errs, fmt.Errorf("endpoint %s %s: unknown callers value %q", strings.ToUpper(m), pattern, c))
				}
			}
		}
	}
	for _, p := range d.Config.DeniedPrefixes {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("config.denied_prefixes: %q must start with /", p))
		}
	}
	if len(errs) == 0 {
		if _, err := compileEndpoints(d.Endpoints); err != nil {
			errs = append(errs, err)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// includeDepth returns the length of the longest include chain from name.
func (d *Document) includeDepth(name string, path []string) (int, error) {
	if slices.Contains(path, name) {
		return 0, fmt.Errorf("role include cycle: %s", strings.Join(append(path, name), " -> "))
	}
	if len(path) > maxIncludeDepth {
		return len(path), nil
	}
	deepest := 0
	for _, inc := range d.Roles[name].Includes {
		if _, ok := d.Roles[inc]; !ok {
			continue
		}
		n, err := d.includeDepth(inc, append(path, name))
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, n+1)
	}
	return deepest, nil
}

// DataDocument renders data.authz for OPA: the document plus principals
// built from active bindings (principal -> workspace -> roles), plus the
// index the Rego policy decides with (regoindex.go). The index is left
// out only if the endpoints do not compile (Validate, which every engine's
// document passed, rules that out); the policy then computes the same
// index itself, more slowly, so the decisions do not change.
func (d *Document) DataDocument(principals map[string]map[string][]string) map[string]any {
	ps := make(map[string]any, len(principals))
	for p, wss := range principals {
		ps[p] = map[string]any{"workspaces": wss}
	}
	// Round-trip through JSON so the result holds only JSON types.
	out := jsonObject(d)
	out["principals"] = ps
	out["workspaces"] = map[string]any{}
	if ix, err := d.buildRegoIndex(); err == nil {
		out["index"] = jsonObject(ix)
	}
	return out
}

// jsonObject is v marshalled to JSON and decoded as an object.
func jsonObject(v any) map[string]any {
	var out map[string]any
	b, _ := json.Marshal(v)
	_ = json.Unmarshal(b, &out)
	return out
}
