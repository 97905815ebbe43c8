package api

import (
	"errors"
	"slices"
	"testing"

	"github.com/nmp-project/nmp/internal/apierror"
)

// TestKeyScopes: a new key's scopes never exceed its creator's token.
func TestKeyScopes(t *testing.T) {
	list := func(s ...string) *[]string { return &s }
	tests := []struct {
		name      string
		creator   []string
		requested *[]string
		want      []string
		refused   bool
	}{
		{name: "unrestricted creator, no scopes: full rights", creator: []string{"openid", "email"}, want: nil},
		{name: "unrestricted creator, any scopes", creator: nil, requested: list("platform:write"), want: []string{"platform:write"}},
		{name: "restricted creator, no scopes: inherits", creator: []string{"openid", "platform:read", "auth:write"}, want: []string{"platform:read", "auth:write"}},
		{name: "same scope", creator: []string{"platform:read"}, requested: list("platform:read"), want: []string{"platform:read"}},
		{name: "platform covers a service's same access", creator: []string{"platform:read"}, requested: list("entities:read"), want: []string{"entities:read"}},
		{name: "wider access refused", creator: []string{"platform:read"}, requested: list("platform:write"), refused: true},
		{name: "a service scope does not cover platform", creator: []string{"entities:read"}, requested: list("platform:read"), refused: true},
		{name: "another service refused", creator: []string{"entities:read"}, requested: list("auth:read"), refused: true},
		{name: "one of several refused", creator: []string{"platform:read"}, requested: list("entities:read", "entities:write"), refused: true},
		{name: "empty list from a restricted creator: inherits, never full rights", creator: []string{"platform:read"}, requested: list(), want: []string{"platform:read"}},
		{name: "empty list from an unrestricted creator: full rights", creator: []string{"openid"}, requested: &[]string{}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyScopes(tc.creator, tc.requested)
			var ae *apierror.Error
			if tc.refused {
				if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "scope_not_held" {
					t.Fatalf("err %v, want 403 scope_not_held", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}
