package ident

import (
	"reflect"
	"strings"
	"testing"
)

func TestSyntax(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"principal id", ValidPrincipalID, "alice@example.com", true},
		{"principal id with every allowed symbol", ValidPrincipalID, "a@b._-:+/|Z9", true},
		{"empty principal id", ValidPrincipalID, "", false},
		{"principal id with a space", ValidPrincipalID, "a b", false},
		{"principal id of 256", ValidPrincipalID, strings.Repeat("a", 256), true},
		{"principal id of 257", ValidPrincipalID, strings.Repeat("a", 257), false},
		{"wildcard is no principal id", ValidPrincipalID, "*", false},
		{"wildcard may be bound", ValidBindingPrincipal, "*", true},
		{"principal may be bound", ValidBindingPrincipal, "bob", true},
		{"bad binding principal", ValidBindingPrincipal, "**", false},
		{"email", ValidEmail, "a@b", true},
		{"email without @", ValidEmail, "ab", false},
		{"email with two @", ValidEmail, "a@b@c", false},
		{"email of 321", ValidEmail, strings.Repeat("a", 319) + "@b", false},
		{"service", IsService, "service:jobs", true},
		{"bare service prefix", IsService, "service:", true},
		{"service is case-sensitive", IsService, "Service:jobs", false},
		{"service account", IsServiceAccount, "service-account:ci", true},
		{"reserved service", Reserved, "SERVICE:x", true},
		{"reserved service account", Reserved, "Service-Account:x", true},
		{"not reserved", Reserved, "services:x", false},
		{"permission", PermissionShaped, "workspaces.members.list", true},
		{"permission with dashes", PermissionShaped, "a-b.c-d", true},
		{"one segment", PermissionShaped, "workspaces", false},
		{"scope is no permission", PermissionShaped, "platform:read", false},
		{"upper case", PermissionShaped, "A.b", false},
		{"scope", ValidScope, "platform:read", true},
		{"scope with dash", ValidScope, "my-svc:read", true},
		{"plain scope", ValidScope, "openid", false},
		{"scope with a prefix", ValidScope, "api://x/platform:read", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn(tc.in); got != tc.want {
				t.Fatalf("%q: %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPermissionsByWorkspace(t *testing.T) {
	tests := []struct {
		name  string
		perms []string
		want  []WorkspacePermissions
	}{
		{"none", nil, nil},
		{"all in the request's workspace", []string{"a.read", "b.read"}, []WorkspacePermissions{{"ml", []string{"a.read", "b.read"}}}},
		{"w/p is checked in w, first-seen order", []string{"system/x.create", "a.read", "system/y.create"},
			[]WorkspacePermissions{{"system", []string{"x.create", "y.create"}}, {"ml", []string{"a.read"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PermissionsByWorkspace(tt.perms, "ml"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
