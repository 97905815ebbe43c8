package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// TestServeTLS: with service.tls the server speaks HTTPS only, logs its
// https:// URL, and with client_ca_file refuses clients without a
// certificate of that CA.
func TestServeTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "nmp").Write(t, dir)
	caFile := filepath.Join(dir, "client-ca.pem")
	tlstest.WriteFile(t, caFile, ca.CertPEM)
	clientPair := ca.Client(t, "alice")
	clientCert, err := tls.X509KeyPair(clientPair.CertPEM, clientPair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		clientCA string
		// cert is the client's certificate, nil for none.
		cert   *tls.Certificate
		wantOK bool
	}{
		{name: "TLS", wantOK: true},
		{name: "mutual TLS with a client certificate", clientCA: caFile, cert: &clientCert, wantOK: true},
		{name: "mutual TLS without a client certificate", clientCA: caFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := servertest.Listen(t)
			addr := ln.Addr().String()
			srv := servertest.StartOn(t, ln, func(c *config.Config) {
				c.Platform.BaseURL = "https://" + addr
				c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: tt.clientCA}
			})
			client := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
			if tt.cert != nil {
				client.Certificates = []tls.Certificate{*tt.cert}
			}
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: client}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get("https://" + addr + "/health/live")
			if !tt.wantOK {
				if err == nil {
					_ = resp.Body.Close()
					t.Fatalf("request without a client certificate answered %s", resp.Status)
				}
				if !strings.Contains(err.Error(), "certificate required") {
					t.Fatalf("error %v, want a refused handshake (certificate required)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /health/live: %s", resp.Status)
			}
			if !strings.Contains(srv.Logs(), "url=https://"+addr) {
				t.Errorf("the server did not log its https:// URL:\n%s", srv.Logs())
			}
			// Plain HTTP on the TLS port is refused.
			resp, err = servertest.Client.Get("http://" + addr + "/health/live")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Fatal("plain HTTP answered 200 on the TLS port")
				}
			}
		})
	}
}

// TestTLSStartError: a certificate and key that do not belong together stop
// the server at start with an error naming the keys.
func TestTLSStartError(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, _ := ca.Server(t, "a").Write(t, dir)
	other := ca.Server(t, "b")
	otherKey := filepath.Join(dir, "other.key")
	tlstest.WriteFile(t, otherKey, other.KeyPEM)
	cfg := config.Default()
	cfg.Platform.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: otherKey}
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("server.New accepted a mismatched certificate and key")
	}
	for _, want := range []string{"service.tls.cert_file", "service.tls.key_file", "do not form a key pair"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
