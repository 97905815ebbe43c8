// Package authztest holds test helpers for packages that need a policy
// engine.
package authztest

import (
	"testing"

	"github.com/nmp-project/nmp/internal/authz"
)

// StaticEngine returns an engine over the built-in policy data, with no
// bindings loaded yet.
func StaticEngine(t testing.TB) *authz.Engine {
	t.Helper()
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	e, err := authz.NewEngine(doc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
