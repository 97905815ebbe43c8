// Package doctor runs the client side of `nmp doctor`: live probes of a
// deployment made from where the user stands (the base URL they use, the
// token and config file they hold), plus the server's own hardening report.
// Every probe yields hardening findings with Source "client"; a probe that
// cannot run is reported Unknown with the reason, never Pass. No probe
// puts a token or secret in a finding.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/hardening"
)

// SourceClient is the Source of the findings the probes produce.
const SourceClient = "client"

// DefaultTimeout bounds each probe.
const DefaultTimeout = 10 * time.Second

// Options is what the probes need from the caller.
type Options struct {
	// BaseURL is the server URL the user uses (through their ingress).
	BaseURL string
	// HTTP calls the nmp server (its TLS trust set by the caller). It must
	// not follow redirects; nil uses a default client that does not.
	HTTP *http.Client
	// IdP calls the identity provider (the token endpoint); nil uses HTTP.
	IdP *http.Client
	// Token is the bearer token commands would send ("" when none).
	Token string
	// SavedScope is the scope saved at login (for opaque tokens).
	SavedScope string
	// RefreshToken reports whether a refresh token is held.
	RefreshToken bool
	// AllowInsecureHTTP permits sending the token over plain http to a
	// host that is not loopback (--insecure-http).
	AllowInsecureHTTP bool
	// ConfigPath is the client config file's path.
	ConfigPath string
	// Getenv reads the environment (CI); nil reads nothing.
	Getenv func(string) string
	// Timeout bounds each probe; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Progress, when set, is called as each probe finishes (done of total).
	Progress func(done, total int)
}

// probe is one check: it returns its findings, or an error when it could
// not run (reported as an Unknown finding with the probe's id).
type probe struct {
	id, section, title string
	run                func(ctx context.Context, e *env) ([]hardening.Finding, error)
}

// env is what a probe runs with.
type env struct {
	Options
}

// probes are every client check, in no particular order: the report is
// sorted.
var probes = []probe{
	{idDiscovery, hardening.SectionValidation, "Discovery answers and says auth is enabled", probeDiscovery},
	{idUnauthenticated, hardening.SectionValidation, "Unauthenticated requests are rejected", probeUnauthenticated},
	{idClockSkew, hardening.SectionValidation, "Clock agrees with the server", probeClockSkew},
	{idStripHeaders, hardening.SectionGateway, "Identity headers from clients are refused", probeStripHeaders},
	{idTLS, hardening.SectionGateway, "TLS between you and the server", probeTLS},
	{idIssuerHTTPS, hardening.SectionAuthentication, "The identity provider uses https", probeIssuerHTTPS},
	{idPasswordGrant, hardening.SectionAuthentication, "Password grant disabled for the CLI client", probePasswordGrant},
	{idTokenLifetime, hardening.SectionAuthentication, "Access-token lifetime of 1 hour or less", probeTokenLifetime},
	{idConfigFile, hardening.SectionSecrets, "CLI config file permissions and location", probeConfigFile},
	{idCIScopes, hardening.SectionAuthorization, "Scoped tokens for CI/CD", probeCIScopes},
	{idServerReport, hardening.SectionValidation, "The server's hardening report", probeServerReport},
}

// IDs returns the ids of every client probe.
func IDs() []string {
	out := make([]string, len(probes))
	for i, p := range probes {
		out[i] = p.id
	}
	return out
}

// Run runs every probe concurrently, each bounded by the timeout, and
// returns their findings (with the server's, when it gives them), sorted.
func Run(ctx context.Context, o Options) hardening.Report {
	e := &env{Options: o}
	if e.Timeout <= 0 {
		e.Timeout = DefaultTimeout
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.HTTP == nil {
		e.HTTP, _ = HTTPClient("", nil) // no CA files: cannot fail
	}
	defer e.HTTP.CloseIdleConnections()
	if e.IdP == nil {
		e.IdP = e.HTTP
	}
	defer e.IdP.CloseIdleConnections()
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	results := make([][]hardening.Finding, len(probes))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for i, p := range probes {
		wg.Go(func() {
			results[i] = runProbe(ctx, e, p)
			if e.Progress != nil {
				mu.Lock()
				done++
				e.Progress(done, len(probes))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	report := hardening.Report{Findings: []hardening.Finding{}}
	for _, fs := range results {
		report.Findings = append(report.Findings, fs...)
	}
	report.Sort()
	return report
}

// runProbe runs p with its timeout. A probe that fails, returns nothing or
// outlives its timeout is one Unknown finding saying why.
func runProbe(ctx context.Context, e *env, p probe) []hardening.Finding {
	ctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	type result struct {
		fs  []hardening.Finding
		err error
	}
	ch := make(chan result, 1)
	go func() {
		fs, err := p.run(ctx, e)
		ch <- result{fs, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r.err = fmt.Errorf("timed out after %s", e.Timeout)
	}
	if r.err == nil && len(r.fs) == 0 {
		r.err = fmt.Errorf("the check produced no result")
	}
	if r.err != nil {
		return []hardening.Finding{{ID: p.id, Section: p.section, Title: p.title, Severity: hardening.Unknown,
			Seen: "Could not check: " + r.err.Error(), Source: SourceClient}}
	}
	for i := range r.fs {
		f := &r.fs[i]
		if f.ID == "" {
			f.ID = p.id
		}
		if f.Section == "" {
			f.Section = p.section
		}
		if f.Title == "" {
			f.Title = p.title
		}
		if f.Source == "" {
			f.Source = SourceClient
		}
	}
	return r.fs
}

// finding is a client finding of the probe's id, section and title (filled
// in by runProbe).
func finding(sev hardening.Severity, seen, fix string, details ...string) []hardening.Finding {
	return []hardening.Finding{{Severity: sev, Seen: seen, Fix: fix, Details: details}}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
