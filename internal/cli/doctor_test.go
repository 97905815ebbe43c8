package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/doctor"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// runDoctor runs nmp with env (and a fresh HOME).
func runDoctor(t *testing.T, env map[string]string, args ...string) runResult {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return newRunner(t, environ...).run(args...)
}

func productionServer(t *testing.T, iss *oidctest.Issuer) *servertest.Server {
	t.Helper()
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = iss.URL
		c.Auth.OIDC.ClientID = "nmp-cli"
		admin := "root@example.com"
		c.Auth.AdminEmail = &admin
	})
	srv.WaitReady(t)
	return srv
}

// TestDoctorExitCodes: exit 1 on an error-level finding (or one at
// --fail-on), 0 otherwise, 2 for bad flag values.
func TestDoctorExitCodes(t *testing.T) {
	iss := oidctest.New(t)
	open := servertest.Start(t, nil) // auth disabled: error-level findings
	prod := productionServer(t, iss) // direct, no ingress: warnings at most
	tests := []struct {
		name       string
		srv        *servertest.Server
		args       []string
		code       int
		wantStderr string
	}{
		{"auth disabled is an error", open, nil, 1, ""},
		{"auth disabled with an explicit --fail-on error", open, []string{"--fail-on", "error"}, 1, ""},
		{"production without errors", prod, nil, 0, ""},
		{"production fails an unknown gate (the test IdP has no token endpoint)", prod, []string{"--fail-on", "unknown"}, 1, ""},
		{"unknown severity", prod, []string{"--fail-on", "fatal"}, 2, "invalid --fail-on"},
		{"zero timeout", prod, []string{"--timeout", "0s"}, 2, "invalid --timeout"},
		{"unparsable timeout", prod, []string{"--timeout", "soon"}, 2, "--timeout"},
		{"bad output format", prod, []string{"-o", "xml"}, 2, "invalid output format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runDoctor(t, map[string]string{"NMP_BASE_URL": tt.srv.URL}, append([]string{"doctor"}, tt.args...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			if tt.code == 1 && !strings.Contains(res.stdout, "checks:") {
				t.Fatalf("a failing run still prints the report: %s", res.stdout)
			}
		})
	}
}

// TestDoctorOutput: -o json and -o yaml are the hardening.Report with
// every client check; the table groups by section without colour when
// stdout is not a terminal; the token never appears.
func TestDoctorOutput(t *testing.T) {
	iss := oidctest.New(t)
	srv := productionServer(t, iss)
	token := iss.Mint(t, oidctest.Claims{Subject: "u-root", Email: "root@example.com", Scope: "platform:read platform:write"})
	env := map[string]string{"NMP_BASE_URL": srv.URL, "NMP_ACCESS_TOKEN": token, "CI": "true"}
	decoders := map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": yaml.Unmarshal}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			res := runDoctor(t, env, "doctor", "-o", format)
			if strings.Contains(res.stdout+res.stderr, token) {
				t.Fatal("the token is in the output")
			}
			var r hardening.Report
			if err := decoders[format]([]byte(res.stdout), &r); err != nil {
				t.Fatalf("%v\n%s", err, res.stdout)
			}
			// Exit 1 exactly when a finding (the client's here; the
			// server's, once it reports) is an error.
			if wantCode := map[bool]int{false: 0, true: 1}[r.Worst() == hardening.Error]; res.code != wantCode {
				t.Fatalf("exit %d, want %d (worst %s)\n%s%s", res.code, wantCode, r.Worst(), res.stdout, res.stderr)
			}
			got := map[string]hardening.Finding{}
			for _, f := range r.Findings {
				got[f.ID] = f
			}
			for _, id := range doctor.IDs() {
				if _, ok := got[id]; !ok {
					t.Fatalf("no %s in %s", id, res.stdout)
				}
			}
			if f := got["authz.ci_scopes"]; f.Severity != hardening.Warning || !strings.Contains(f.Seen, "platform:write") {
				t.Fatalf("CI token with a write scope: %+v", f)
			}
			// Until the server offers its report, the PlatformAdmin is told
			// so; once it does, its findings are in the output.
			server := 0
			for _, f := range r.Findings {
				if f.Source == "server" {
					server++
				}
			}
			rep := got["server.report"]
			switch {
			case server == 0 && (rep.Severity != hardening.Unknown || !strings.Contains(rep.Seen, "does not offer")):
				t.Fatalf("server.report without server findings: %+v", rep)
			case server > 0 && rep.Severity != hardening.Pass:
				t.Fatalf("server.report with %d server findings: %+v", server, rep)
			}
		})
	}
	t.Run("verbose", func(t *testing.T) {
		res := runDoctor(t, env, "doctor", "-v", "-o", "json")
		if res.code > 1 || !strings.Contains(res.stderr, "GET "+srv.URL+"/apis/auth/v2/hardening -> ") {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
		if strings.Contains(res.stdout+res.stderr, token) {
			t.Fatal("the token is in the output")
		}
	})
	t.Run("table", func(t *testing.T) {
		res := runDoctor(t, env, "doctor")
		if res.code > 1 {
			t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		if strings.Contains(res.stdout+res.stderr, token) {
			t.Fatal("the token is in the output")
		}
		if strings.Contains(res.stdout+res.stderr, "\033[") {
			t.Fatal("colour or terminal control when stdout is not a terminal")
		}
		out := res.stdout
		prev := -1
		for _, section := range []string{hardening.SectionAuthentication, hardening.SectionAuthorization,
			hardening.SectionGateway, hardening.SectionSecrets, hardening.SectionValidation} {
			i := strings.Index(out, "\n"+section+"\n")
			if section == hardening.SectionAuthentication && strings.HasPrefix(out, section+"\n") {
				i = 0
			}
			if i < 0 || i < prev {
				t.Fatalf("section %q missing or out of order:\n%s", section, out)
			}
			prev = i
		}
		for _, s := range []string{"WARNING  authz.ci_scopes", "fix: For pipelines", "PASS     validation.unauthenticated", "checks:"} {
			if !strings.Contains(out, s) {
				t.Fatalf("no %q in\n%s", s, out)
			}
		}
	})
}

// TestDoctorOverTLS: doctor trusts the context's certificate authority
// as the other commands do (https base URL: gateway.base_url_https passes); without
// it the checks that need the server are unknown, never pass.
func TestDoctorOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "nmp").Write(t, dir)
	ln := servertest.Listen(t)
	baseURL := "https://" + ln.Addr().String()
	servertest.StartOn(t, ln, func(c *config.Config) {
		c.Platform.BaseURL = baseURL
		c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	tests := []struct {
		name      string
		cluster   string
		discovery hardening.Severity
	}{
		{"trusted CA", fmt.Sprintf("certificate_authority_data: %q", base64.StdEncoding.EncodeToString(ca.CertPEM)), hardening.Error},
		{"no CA", "certificate_authority: null", hardening.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			content := fmt.Sprintf("current_context: tls\nclusters:\n  - {name: c, base_url: %q, %s}\nusers:\n  - {name: u, type: no-auth}\ncontexts:\n  - {name: tls, cluster: c, user: u}\n", baseURL, tt.cluster)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runDoctor(t, map[string]string{"NMP_CONFIG_FILE": path}, "doctor", "-o", "json")
			var r hardening.Report
			if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
				t.Fatalf("%v\n%s%s", err, res.stdout, res.stderr)
			}
			sev := map[string]hardening.Finding{}
			for _, f := range r.Findings {
				sev[f.ID] = f
			}
			if f := sev["gateway.base_url_https"]; f.Severity != hardening.Pass {
				t.Fatalf("gateway.base_url_https: %+v", f)
			}
			// The server runs with auth disabled: reached, discovery is an
			// error; not reached, it is unknown.
			if f := sev["validation.discovery"]; f.Severity != tt.discovery {
				t.Fatalf("validation.discovery: %+v", f)
			}
			if tt.discovery == hardening.Unknown && !strings.Contains(sev["validation.discovery"].Seen, "certificate") {
				t.Fatalf("the reason names the certificate problem: %+v", sev["validation.discovery"])
			}
		})
	}
}
