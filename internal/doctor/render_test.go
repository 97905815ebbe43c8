package doctor_test

import (
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/doctor"
	"github.com/nmp-project/nmp/internal/hardening"
)

func TestWriteTable(t *testing.T) {
	r := hardening.Report{Findings: []hardening.Finding{
		{ID: "validation.discovery", Section: hardening.SectionValidation, Severity: hardening.Pass, Seen: "ok", Source: "client"},
		{ID: "authn.oidc", Section: hardening.SectionAuthentication, Severity: hardening.Error, Seen: "evil \033]0;title\007 text",
			Fix: "auth.oidc", Details: []string{"line\none"}, Source: "server"},
	}}
	tests := []struct {
		name   string
		colour bool
	}{
		{"plain", false},
		{"colour", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := doctor.WriteTable(&b, r, tt.colour); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if strings.Contains(out, "\007") || strings.Contains(out, "\033]") || strings.Contains(out, "line\none") {
				t.Fatalf("control characters from a finding reach the terminal: %q", out)
			}
			if got := strings.Contains(out, "\033[1;31mERROR"); got != tt.colour {
				t.Fatalf("coloured severity %v, want %v: %q", got, tt.colour, out)
			}
			if strings.Index(out, "Authentication\n") > strings.Index(out, "Deployment Validation\n") {
				t.Fatalf("sections out of the checklist's order:\n%s", out)
			}
			for _, s := range []string{"fix: auth.oidc", "from: server", "2 checks: 1 error, 0 warning, 0 unknown, 0 info, 1 pass."} {
				if !strings.Contains(out, s) {
					t.Fatalf("no %q in\n%s", s, out)
				}
			}
		})
	}
}
