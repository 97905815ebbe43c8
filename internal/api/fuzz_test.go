package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/apierror"
)

// FuzzDecodeBody: arbitrary bodies never panic and are either accepted
// with typed values or refused with a 4xx.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"name": "x"}`, `{"name": 1}`, `[]`, `{"roles": ["a"], "extra": null}`, `{`, ``, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, _ := http.NewRequest("POST", "/", strings.NewReader(body))
		var name string
		var roles []string
		err := decodeBody(r, field{"name", &name, true}, field{"roles", &roles, false})
		if err == nil {
			return
		}
		ae, ok := err.(*apierror.Error)
		if !ok || ae.Status < 400 || ae.Status > 499 || ae.Detail == "" {
			t.Fatalf("body %q: %#v", body, err)
		}
	})
}
