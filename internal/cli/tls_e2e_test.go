package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// TestCLIOverTLS runs the CLI against a real server serving TLS with a
// certificate of a test CA: trusted through the context's
// certificate_authority_data (or the certificate_authority file) it works,
// login included; without them the system roots refuse the server with an
// unknown-authority error.
func TestCLIOverTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "nmp").Write(t, dir)
	ln := servertest.Listen(t)
	baseURL := "https://" + ln.Addr().String()
	servertest.StartOn(t, ln, func(c *config.Config) {
		c.Platform.BaseURL = baseURL
		c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.CertPEM)
	caData := base64.StdEncoding.EncodeToString(ca.CertPEM)

	tests := []struct {
		name    string
		cluster string // the cluster's settings besides name and base_url
		wantErr string // in stderr; "" for success
	}{
		{name: "certificate_authority_data", cluster: fmt.Sprintf("certificate_authority_data: %q", caData)},
		{name: "certificate_authority file", cluster: fmt.Sprintf("certificate_authority: %q", caFile)},
		{name: "no CA: unknown authority", cluster: "certificate_authority: null", wantErr: "unknown authority"},
		{name: "another CA: unknown authority",
			cluster: fmt.Sprintf("certificate_authority_data: %q", base64.StdEncoding.EncodeToString(tlstest.NewCA(t, "other").CertPEM)),
			wantErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			content := fmt.Sprintf(`current_context: tls
clusters:
  - {name: tls-cluster, base_url: %q, %s}
users:
  - {name: tls-user, type: no-auth}
contexts:
  - {name: tls, cluster: tls-cluster, user: tls-user}
`, baseURL, tt.cluster)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"HOME=" + t.TempDir(), "NMP_CONFIG_FILE=" + path}
			for _, args := range [][]string{{"workspaces", "list", "-o", "json"}, {"auth", "login"}} {
				var out, errb bytes.Buffer
				code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, env)
				switch {
				case tt.wantErr == "" && code != 0:
					t.Fatalf("nmp %v: exit %d\n%s%s", args, code, out.String(), errb.String())
				case tt.wantErr == "" && args[0] == "workspaces" && !strings.Contains(out.String(), `"default"`):
					t.Fatalf("nmp %v: no default workspace in %s", args, out.String())
				case tt.wantErr != "" && (code == 0 || !strings.Contains(errb.String(), tt.wantErr)):
					t.Fatalf("nmp %v: exit %d, stderr %q; want a failure with %q", args, code, errb.String(), tt.wantErr)
				}
			}
		})
	}
}
