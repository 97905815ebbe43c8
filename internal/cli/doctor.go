package cli

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/cli/term"
	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/doctor"
	"github.com/nmp-project/nmp/internal/hardening"
)

func newDoctorCommand(app *App) *cobra.Command {
	var (
		timeout time.Duration
		failOn  string
	)
	cmd := &cobra.Command{
		Use:   "doctor [--timeout D] [--fail-on SEVERITY]",
		Short: "Check this deployment against the production-hardening checklist",
		Long: "Probe the deployment from where you stand — discovery, unauthenticated access, identity\n" +
			"headers through your base URL, TLS, the IdP's password grant, your token's lifetime, clock\n" +
			"skew, your config file, CI scopes — and add the server's own findings (PlatformAdmin).\n" +
			"Exits 1 when a finding is at least --fail-on (default error), 0 otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			threshold, err := hardening.ParseSeverity(failOn)
			if err != nil {
				return UsageErrorf("invalid --fail-on: %v", err)
			}
			if timeout <= 0 {
				return UsageErrorf("invalid --timeout %s: want a positive duration such as 10s", timeout)
			}
			opts, err := app.doctorOptions(timeout)
			if err != nil {
				return err
			}
			stop := app.doctorProgress(&opts)
			report := doctor.Run(cmd.Context(), opts)
			stop()
			if err := cmd.Context().Err(); err != nil {
				return err
			}
			if err := app.renderReport(report); err != nil {
				return err
			}
			var failing []string
			for _, f := range report.Findings {
				if f.Severity.Rank() >= threshold.Rank() {
					failing = append(failing, f.ID)
				}
			}
			if len(failing) > 0 {
				return &ExitError{Code: ExitLocal, Silent: true,
					Err: fmt.Errorf("findings at or above %s: %s", threshold, strings.Join(failing, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", doctor.DefaultTimeout, "time limit of each check")
	cmd.Flags().StringVar(&failOn, "fail-on", string(hardening.Error), "exit 1 when a finding is at least this severity: pass, info, unknown, warning or error")
	return cmd
}

// doctorOptions gathers what the probes need from the effective settings.
// No token is refreshed: doctor reports on the credential as it is.
func (a *App) doctorOptions(timeout time.Duration) (doctor.Options, error) {
	s, err := a.Settings()
	if err != nil {
		return doctor.Options{}, err
	}
	path, err := a.ConfigPath()
	if err != nil {
		return doctor.Options{}, err
	}
	hc, err := doctor.HTTPClient(s.CertificateAuthority, s.CertificateAuthorityData)
	if err != nil {
		return doctor.Options{}, LocalError(err)
	}
	if a.Global.Verbose {
		hc.Transport = client.VerboseTransport(hc.Transport, a.Stderr)
	}
	o := doctor.Options{
		BaseURL: s.BaseURL, HTTP: hc, Token: s.Token, AllowInsecureHTTP: a.Global.InsecureHTTP,
		ConfigPath: path, Getenv: a.Getenv, Timeout: timeout,
	}
	if s.User != nil && s.TokenSource == clientconfig.TokenSourceConfig {
		o.RefreshToken = s.User.RefreshToken != ""
		o.SavedScope = s.User.Scope
	}
	return o, nil
}

// doctorProgress shows "Checking… n/m" on stderr while the probes run,
// when stderr is a terminal; stop clears it.
func (a *App) doctorProgress(o *doctor.Options) (stop func()) {
	f, ok := a.Stderr.(*os.File)
	if !ok || !term.IsTerminal(f) {
		return func() {}
	}
	var mu sync.Mutex
	fmt.Fprint(f, "\rChecking the deployment… ")
	o.Progress = func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "\rChecking the deployment… %d/%d ", done, total)
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(f, "\r\033[K")
	}
}

// renderReport writes the report as JSON or YAML (the hardening.Report),
// or as the grouped table, coloured when stdout is a terminal and
// NO_COLOR is not set.
func (a *App) renderReport(r hardening.Report) error {
	s, err := a.Settings()
	if err != nil {
		return err
	}
	if s.OutputFormat == clientconfig.OutputJSON || s.OutputFormat == clientconfig.OutputYAML {
		return LocalError(render(a.Stdout, s.OutputFormat, r, Table{}))
	}
	colour := false
	if f, ok := a.Stdout.(*os.File); ok && term.IsTerminal(f) && a.Getenv("NO_COLOR") == "" {
		colour = true
	}
	return LocalError(doctor.WriteTable(a.Stdout, r, colour))
}
