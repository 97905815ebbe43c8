// Package hardening is the vocabulary of the production-hardening checks:
// a Finding says, for one item of the checklist, what was seen, how
// serious it is and how to fix it. The server produces findings only it
// can know (GET /apis/auth/v2/hardening); `nmp doctor` adds the probes run
// from where the user stands and renders both.
package hardening

import (
	"fmt"
	"sort"
)

// Severity ranks a finding. A check that could not be made is Unknown,
// never Pass.
type Severity string

// Severities, from the least to the most serious.
const (
	Pass    Severity = "pass"
	Info    Severity = "info"
	Unknown Severity = "unknown" // the check could not run; Seen says why
	Warning Severity = "warning"
	Error   Severity = "error"
)

var ranks = map[Severity]int{Pass: 0, Info: 1, Unknown: 2, Warning: 3, Error: 4}

// Rank orders severities (Pass lowest); -1 for an unknown value.
func (s Severity) Rank() int {
	if r, ok := ranks[s]; ok {
		return r
	}
	return -1
}

// ParseSeverity reads a severity name (for --fail-on).
func ParseSeverity(s string) (Severity, error) {
	if _, ok := ranks[Severity(s)]; !ok {
		return "", fmt.Errorf("unknown severity %q (want pass, info, unknown, warning or error)", s)
	}
	return Severity(s), nil
}

// Sections of the checklist, in its order.
const (
	SectionAuthentication = "Authentication"
	SectionAuthorization  = "Authorization"
	SectionGateway        = "Gateway and Network"
	SectionPolicyEngine   = "Policy Engine"
	SectionSecrets        = "Secrets and Credentials"
	SectionValidation     = "Deployment Validation"
)

// Sections lists the checklist's sections in order.
var Sections = []string{SectionAuthentication, SectionAuthorization, SectionGateway,
	SectionPolicyEngine, SectionSecrets, SectionValidation}

// Finding is the outcome of one check.
type Finding struct {
	// ID is stable across releases (e.g. "authn.password_grant"); scripts
	// and dashboards key on it.
	ID string `json:"id" yaml:"id"`
	// Section is the checklist section the check belongs to.
	Section string `json:"section" yaml:"section"`
	// Title names the checklist item.
	Title    string   `json:"title" yaml:"title"`
	Severity Severity `json:"severity" yaml:"severity"`
	// Seen is what the check observed, in a sentence; never a secret.
	Seen string `json:"seen" yaml:"seen"`
	// Fix is the remedy as a config key or a command ("" on pass).
	Fix string `json:"fix,omitempty" yaml:"fix,omitempty"`
	// Details lists the items behind the finding (workspaces, issuers,
	// principals), one per line.
	Details []string `json:"details,omitempty" yaml:"details,omitempty"`
	// Source is "server" for the server's findings, "client" for probes.
	Source string `json:"source" yaml:"source"`
}

// Report is the body of GET /apis/auth/v2/hardening and, with the
// client's probes added, nmp doctor's output.
type Report struct {
	Findings []Finding `json:"findings" yaml:"findings"`
}

// Worst is the highest severity in the report (Pass when empty).
func (r Report) Worst() Severity {
	worst := Pass
	for _, f := range r.Findings {
		if f.Severity.Rank() > worst.Rank() {
			worst = f.Severity
		}
	}
	return worst
}

// Sort orders findings by checklist section, then id, so output is stable.
func (r *Report) Sort() {
	order := make(map[string]int, len(Sections))
	for i, s := range Sections {
		order[s] = i
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		oa, okA := order[a.Section]
		ob, okB := order[b.Section]
		if !okA {
			oa = len(Sections)
		}
		if !okB {
			ob = len(Sections)
		}
		if oa != ob {
			return oa < ob
		}
		return a.ID < b.ID
	})
}
