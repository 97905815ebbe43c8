package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp/devidptest"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// TestDoctorHardenedDeployment: the whole checklist met — nmp serving
// TLS, OIDC with an IdP whose CLI client has no password grant and issues
// 1-hour tokens, one person as PlatformAdmin, the default workspace's "*"
// binding lowered to Viewer — and a PlatformAdmin signed in with the device
// flow: every finding of `nmp doctor`, the client's and the server's, is
// pass or info, and it exits 0 even with --fail-on warning. Before "*" is
// lowered, the same run fails that gate on authz.wildcard_bindings.
func TestDoctorHardenedDeployment(t *testing.T) {
	t.Parallel()
	const person, password = "jane.doe@example.com", "jane-Pw-4c1d9a7e"
	idpCfg := config.Default().DevIDP
	cliClient := devidptest.WithoutPasswordGrant(idpCfg.Clients[0])
	idpCfg.Clients = []config.DevIDPClient{cliClient}
	idpCfg.Users = []config.DevIDPUser{{Username: "jane", Password: password, Email: person}}
	idpCfg.AccessTokenTTLSeconds = 3600
	issuer := devidptest.Start(t, idpCfg, nil)

	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "nmp").Write(t, t.TempDir())
	ln := servertest.Listen(t)
	baseURL := "https://" + ln.Addr().String()
	srv := servertest.StartOn(t, ln, func(c *config.Config) {
		admin := person
		c.Platform.BaseURL = baseURL
		c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile}
		c.Auth.Enabled = true
		c.Auth.AdminEmail = &admin
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = issuer
		c.Auth.OIDC.ClientID = cliClient.ClientID
		c.Auth.OIDC.MaxTokenLifetimeSeconds = 3600
	})
	srv.WaitReady(t)

	r := newRunner(t)
	r.ok("config", "set", "--base-url", baseURL, "--certificate-authority-data", base64.StdEncoding.EncodeToString(ca.CertPEM), "--activate")
	// Sign in with the device flow, approved at the IdP as a browser would.
	live := &testenv.Buffer{}
	approved := make(chan struct{})
	go func() {
		defer close(approved)
		code := waitFor(t, live, regexp.MustCompile(`enter the code: ([A-Z0-9-]+)`))
		uri := waitFor(t, live, regexp.MustCompile(`open this URL in a browser:\s+(\S+)`))
		if body := devIDPApproveDevice(t, uri+"?user_code="+url.QueryEscape(code), "jane", password); !strings.Contains(body, "Device authorized") {
			t.Errorf("approval page:\n%s", body)
		}
	}()
	login := r.runWith(cli.WithDevicePollInterval(context.Background(), time.Second), live, "auth", "login", "--no-browser")
	<-approved
	if login.code != 0 {
		t.Fatalf("login: exit %d\n%s", login.code, login.stderr)
	}

	doctor := func() (hardening.Report, runResult) {
		t.Helper()
		res := r.run("doctor", "-o", "json", "--fail-on", "warning")
		var rep hardening.Report
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("doctor output: %v\n%s\n%s", err, res.stdout, res.stderr)
		}
		return rep, res
	}
	rep, res := doctor()
	if res.code != 1 {
		t.Fatalf("with \"*\" Editor on default the warning gate must fail: exit %d", res.code)
	}
	if f := findingByID(rep, "authz.wildcard_bindings"); f.Severity != hardening.Warning || !strings.Contains(strings.Join(f.Details, "\n"), "default") {
		t.Fatalf("authz.wildcard_bindings: %+v", f)
	}

	r.ok("members", "update", "-w", "default", "*", "--roles", "Viewer")
	rep, res = doctor()
	ids := map[string]bool{}
	sources := map[string]int{}
	for _, f := range rep.Findings {
		if ids[f.ID] {
			t.Errorf("finding id %s appears twice", f.ID)
		}
		ids[f.ID] = true
		sources[f.Source]++
		if f.Severity != hardening.Pass && f.Severity != hardening.Info {
			t.Errorf("%s (%s): %s — %s (fix: %s)", f.ID, f.Source, f.Severity, f.Seen, f.Fix)
		}
	}
	if sources[hardening.SourceServer] < 14 || sources["client"] < 11 {
		t.Fatalf("findings by source %v: want the server's and the client's", sources)
	}
	if res.code != 0 {
		t.Fatalf("hardened: exit %d\n%s", res.code, res.stderr)
	}
	if token := r.user().Token; token == "" || strings.Contains(res.stdout+res.stderr, token) {
		t.Fatal("no token, or the token in doctor's output")
	}
}

func findingByID(r hardening.Report, id string) hardening.Finding {
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	return hardening.Finding{}
}
