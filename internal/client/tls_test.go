package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// TestCertificateAuthorityData: PEM data trusts a private CA in addition to
// the system roots; a server of another CA stays untrusted.
func TestCertificateAuthorityData(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"name": "w"})
	}))
	defer srv.Close()
	serverCA := tlstest.EncodeCertificate(srv.Certificate())
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{name: "the server's CA", data: serverCA},
		{name: "another CA", data: tlstest.NewCA(t, "other").CertPEM, wantErr: "unknown authority"},
		{name: "no CA: system roots only", wantErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, Options{BaseURL: srv.URL, CertificateAuthorityData: tt.data}).GetWorkspace(context.Background(), "w")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("request failed: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Options{BaseURL: srv.URL, CertificateAuthorityData: []byte("not PEM")}); err == nil {
		t.Error("New with CA data that holds no certificate succeeded")
	}
}

// TestPlainHTTPRule: http:// is allowed to loopback hosts, refused to other
// hosts unless allowed explicitly; https:// is always allowed.
func TestPlainHTTPRule(t *testing.T) {
	tests := []struct {
		name  string
		url   string
		allow bool
		ok    bool
	}{
		{name: "http to 127.0.0.1", url: "http://127.0.0.1:8080", ok: true},
		{name: "http to 127.1.2.3", url: "http://127.1.2.3:8080", ok: true},
		{name: "http to localhost", url: "http://localhost:8080", ok: true},
		{name: "http to LOCALHOST.", url: "http://LOCALHOST.:8080", ok: true},
		{name: "http to a name under localhost", url: "http://nmp.localhost", ok: true},
		{name: "http to ::1", url: "http://[::1]:8080", ok: true},
		{name: "http to a mapped loopback", url: "http://[::ffff:127.0.0.1]:8080", ok: true},
		{name: "http to a remote name", url: "http://nmp.example.com"},
		{name: "http to a private address", url: "http://10.0.0.5:8080"},
		{name: "http to all interfaces", url: "http://0.0.0.0:8080"},
		{name: "http to a name that starts like localhost", url: "http://localhost.example.com"},
		{name: "HTTP in capitals to a remote name", url: "HTTP://nmp.example.com"},
		{name: "http to a remote name, allowed", url: "http://nmp.example.com", allow: true, ok: true},
		{name: "https to a remote name", url: "https://nmp.example.com", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckPlainHTTP(u, tt.allow)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckPlainHTTP(%s, %v) = %v, want ok %v", tt.url, tt.allow, err, tt.ok)
			}
			_, newErr := New(Options{BaseURL: tt.url, AllowInsecureHTTP: tt.allow})
			if tt.ok != (newErr == nil) {
				t.Fatalf("New(%s) = %v, want ok %v", tt.url, newErr, tt.ok)
			}
			if !tt.ok && (!errors.Is(newErr, ErrInsecureHTTP) || !strings.Contains(newErr.Error(), "clear text")) {
				t.Fatalf("New(%s) = %v, want ErrInsecureHTTP saying why", tt.url, newErr)
			}
		})
	}
}
