package hardening

import "testing"

func TestWorstAndSort(t *testing.T) {
	r := Report{Findings: []Finding{
		{ID: "secrets.config_file_mode", Section: SectionSecrets, Severity: Pass},
		{ID: "authn.oidc", Section: SectionAuthentication, Severity: Unknown},
		{ID: "authn.enabled", Section: SectionAuthentication, Severity: Warning},
		{ID: "x.other", Section: "Elsewhere", Severity: Info},
	}}
	if got := r.Worst(); got != Warning {
		t.Fatalf("worst %q", got)
	}
	r.Sort()
	want := []string{"authn.enabled", "authn.oidc", "secrets.config_file_mode", "x.other"}
	for i, f := range r.Findings {
		if f.ID != want[i] {
			t.Fatalf("order %d: %s, want %s", i, f.ID, want[i])
		}
	}
	if (Report{}).Worst() != Pass {
		t.Fatal("an empty report is a pass")
	}
}

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"warning", "warning", true},
		{"error", "error", true},
		{"unknown value", "fatal", false},
		{"case matters", "Error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSeverity(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseSeverity(%q) = %v", tt.in, err)
			}
		})
	}
	if Unknown.Rank() <= Info.Rank() || Unknown.Rank() >= Warning.Rank() {
		t.Fatal("an unknown outcome ranks above info and below warning")
	}
}
