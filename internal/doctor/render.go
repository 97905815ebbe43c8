package doctor

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/nmp-project/nmp/internal/hardening"
)

// ANSI colours of the severities.
var colours = map[hardening.Severity]string{
	hardening.Pass:    "\033[32m", // green
	hardening.Info:    "\033[36m", // cyan
	hardening.Unknown: "\033[35m", // magenta
	hardening.Warning: "\033[33m", // yellow
	hardening.Error:   "\033[1;31m",
}

const reset = "\033[0m"

// WriteTable writes the report grouped by checklist section: per finding
// its severity, id and what was seen, then the fix and the details,
// indented; colour adds ANSI colours to the severities. A summary line
// ends it. Text from the server is stripped of control characters.
func WriteTable(w io.Writer, r hardening.Report, colour bool) error {
	r.Sort()
	sections := slices.Clone(hardening.Sections)
	for _, f := range r.Findings {
		if !slices.Contains(sections, f.Section) {
			sections = append(sections, f.Section)
		}
	}
	idWidth := 0
	for _, f := range r.Findings {
		idWidth = max(idWidth, len(clean(f.ID)))
	}
	var b strings.Builder
	counts := map[hardening.Severity]int{}
	for _, section := range sections {
		var in []hardening.Finding
		for _, f := range r.Findings {
			if f.Section == section {
				in = append(in, f)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\n", clean(section))
		for _, f := range in {
			counts[f.Severity]++
			sev := fmt.Sprintf("%-7s", strings.ToUpper(clean(string(f.Severity))))
			if c, ok := colours[f.Severity]; ok && colour {
				sev = c + sev + reset
			}
			indent := strings.Repeat(" ", 2+7+2+idWidth+2)
			fmt.Fprintf(&b, "  %s  %-*s  %s\n", sev, idWidth, clean(f.ID), clean(f.Seen))
			if f.Source != "" && f.Source != SourceClient {
				fmt.Fprintf(&b, "%sfrom: %s\n", indent, clean(f.Source))
			}
			if f.Fix != "" {
				fmt.Fprintf(&b, "%sfix: %s\n", indent, clean(f.Fix))
			}
			for _, d := range f.Details {
				fmt.Fprintf(&b, "%s- %s\n", indent, clean(d))
			}
		}
		b.WriteString("\n")
	}
	var parts []string
	for _, s := range []hardening.Severity{hardening.Error, hardening.Warning, hardening.Unknown, hardening.Info, hardening.Pass} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintf(&b, "%d checks: %s.\n", len(r.Findings), strings.Join(parts, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// clean makes s one line without control characters (a server's text
// must not drive the terminal).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
