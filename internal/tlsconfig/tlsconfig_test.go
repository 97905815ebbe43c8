package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// serve runs an HTTPS server with tc on 127.0.0.1:0 that answers 200 and
// returns its address; it stops at test cleanup.
func serve(t *testing.T, tc *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		TLSConfig:         tc,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func logger(buf *testenv.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

// TestRotationWithoutRestart: while a client keeps opening new connections,
// the certificate and key are replaced on disk; new handshakes present the
// new certificate, the server is not restarted and no request fails.
func TestRotationWithoutRestart(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	first := ca.Server(t, "first")
	dir := t.TempDir()
	certFile, keyFile := first.Write(t, dir)
	logs := &testenv.Buffer{}
	tc, err := Server(config.TLSConfig{CertFile: certFile, KeyFile: keyFile}, logger(logs))
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", tc.MinVersion)
	}
	addr := serve(t, tc)

	// Every request is a new connection, hence a new handshake.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}}
	get := func() (serial string, err error) {
		resp, err := hc.Get("https://" + addr + "/")
		if err != nil {
			return "", err
		}
		defer func() { _ = resp.Body.Close() }()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", errors.New(resp.Status)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	if s, err := get(); err != nil || s != first.Cert.SerialNumber.String() {
		t.Fatalf("before rotation: serial %s, %v; want %s", s, err, first.Cert.SerialNumber)
	}

	// A client that keeps connecting during the rotation.
	var (
		requests atomic.Int64
		mu       sync.Mutex
		failures []error
	)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if _, err := get(); err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
			requests.Add(1)
		}
	}()

	second := ca.Server(t, "second")
	second.Write(t, dir)
	want := second.Cert.SerialNumber.String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := get()
		if err != nil {
			t.Fatalf("request during rotation: %v", err)
		}
		if s == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate (serial %s) was not served within 10s; still %s", want, s)
		}
	}
	// Once the new certificate is seen, it stays.
	for range 5 {
		if s, err := get(); err != nil || s != want {
			t.Fatalf("after rotation: serial %s, %v; want %s", s, err, want)
		}
	}
	cancel()
	<-stopped
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d background requests failed during the rotation, first: %v", len(failures), requests.Load(), failures[0])
	}
	if requests.Load() == 0 {
		t.Fatal("the background client sent no request")
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs)
	}
	t.Logf("%d background requests during the rotation, none failed", requests.Load())
}

// TestBadReplacementKeepsServing: a replacement that does not load (here a
// key of another certificate, as when only one file has been written yet)
// keeps the previous pair, is logged once however many handshakes see it,
// and the next good pair is loaded. A fake clock drives the checks.
func TestBadReplacementKeepsServing(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	first, second, third := ca.Server(t, "first"), ca.Server(t, "second"), ca.Server(t, "third")
	dir := t.TempDir()
	certFile, keyFile := first.Write(t, dir)
	logs := &testenv.Buffer{}
	now := time.Now()
	r, err := newReloader(certFile, keyFile, logger(logs), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		t.Helper()
		c, err := r.getCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("getCertificate: %v, %v", c, err)
		}
		return c.Leaf.SerialNumber.String()
	}
	tests := []struct {
		name string
		// change is applied, then the clock advances by advance.
		change  func()
		advance time.Duration
		want    string
		errors  int // "not reloaded" lines logged so far
	}{
		{name: "unchanged", change: func() {}, advance: 2 * time.Second, want: first.Cert.SerialNumber.String()},
		{name: "new cert, old key: previous pair kept and logged", change: func() { tlstest.WriteFile(t, certFile, second.CertPEM) },
			advance: 2 * time.Second, want: first.Cert.SerialNumber.String(), errors: 1},
		{name: "same bad state: not logged again", change: func() {}, advance: 2 * time.Second, want: first.Cert.SerialNumber.String(), errors: 1},
		{name: "within the interval the files are not looked at", change: func() { tlstest.WriteFile(t, keyFile, second.KeyPEM) },
			advance: 100 * time.Millisecond, want: first.Cert.SerialNumber.String(), errors: 1},
		{name: "matching key arrives: loaded", change: func() {}, advance: 2 * time.Second, want: second.Cert.SerialNumber.String(), errors: 1},
		{name: "key not PEM: previous pair kept", change: func() { tlstest.WriteFile(t, keyFile, []byte("not a key")) },
			advance: 2 * time.Second, want: second.Cert.SerialNumber.String(), errors: 2},
		{name: "key file removed: previous pair kept", change: func() { _ = os.Remove(keyFile) },
			advance: 2 * time.Second, want: second.Cert.SerialNumber.String(), errors: 3},
		{name: "good pair: loaded", change: func() { third.Write(t, dir) },
			advance: 2 * time.Second, want: third.Cert.SerialNumber.String(), errors: 3},
	}
	for _, tt := range tests {
		tt.change()
		now = now.Add(tt.advance)
		if got := serial(); got != tt.want {
			t.Errorf("%s: serial %s, want %s", tt.name, got, tt.want)
		}
		if got := strings.Count(logs.String(), "TLS certificate not reloaded"); got != tt.errors {
			t.Errorf("%s: %d reload errors logged, want %d:\n%s", tt.name, got, tt.errors, logs)
		}
	}
	if strings.Contains(logs.String(), string(third.KeyPEM[30:60])) {
		t.Error("the log holds key material")
	}
}

// TestStartErrors: files that cannot serve are an error at start that names
// the key (and never quotes a key).
func TestStartErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA, keyB := write("a.crt", a.CertPEM), write("a.key", a.KeyPEM), write("b.key", b.KeyPEM)
	garbage := write("garbage", []byte("hello\n"))
	unreadable := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		cfg  config.TLSConfig
		want []string
	}{
		{name: "missing certificate", cfg: config.TLSConfig{CertFile: missing, KeyFile: keyA}, want: []string{"service.tls.cert_file", "no such file"}},
		{name: "missing key", cfg: config.TLSConfig{CertFile: certA, KeyFile: missing}, want: []string{"service.tls.key_file", "no such file"}},
		{name: "unreadable key", cfg: config.TLSConfig{CertFile: certA, KeyFile: unreadable}, want: []string{"service.tls.key_file", "is a directory"}},
		{name: "certificate not PEM", cfg: config.TLSConfig{CertFile: garbage, KeyFile: keyA}, want: []string{"service.tls.cert_file", "no PEM certificate"}},
		{name: "key not PEM", cfg: config.TLSConfig{CertFile: certA, KeyFile: garbage}, want: []string{"service.tls.key_file", "no PEM private key"}},
		{name: "key is a certificate", cfg: config.TLSConfig{CertFile: certA, KeyFile: certA}, want: []string{"service.tls.key_file", "no PEM private key"}},
		{name: "mismatched pair", cfg: config.TLSConfig{CertFile: certA, KeyFile: keyB}, want: []string{"service.tls.cert_file", "service.tls.key_file", "do not form a key pair", "does not match"}},
		{name: "client CA missing", cfg: config.TLSConfig{CertFile: certA, KeyFile: keyA, ClientCAFile: missing}, want: []string{"service.tls.client_ca_file", "no such file"}},
		{name: "client CA not PEM", cfg: config.TLSConfig{CertFile: certA, KeyFile: keyA, ClientCAFile: garbage}, want: []string{"service.tls.client_ca_file", "no PEM certificate"}},
		{name: "key without certificate", cfg: config.TLSConfig{KeyFile: keyA}, want: []string{"service.tls.cert_file", "service.tls.key_file"}},
		{name: "client CA without a certificate", cfg: config.TLSConfig{ClientCAFile: certA}, want: []string{"service.tls.client_ca_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := Server(tt.cfg, logger(&testenv.Buffer{}))
			if err == nil {
				t.Fatalf("no error (config %v)", tc)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, key := range [][]byte{a.KeyPEM, b.KeyPEM} {
				if strings.Contains(err.Error(), string(key[30:60])) {
					t.Errorf("error %q holds key material", err)
				}
			}
		})
	}
	if tc, err := Server(config.TLSConfig{}, nil); tc != nil || err != nil {
		t.Errorf("unconfigured: %v, %v; want nil, nil", tc, err)
	}
}

// TestHandshakes: mutual TLS refuses a client without a certificate or with
// one from another CA; TLS 1.1 is refused.
func TestHandshakes(t *testing.T) {
	ca, other := tlstest.NewCA(t, "test CA"), tlstest.NewCA(t, "other CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "server").Write(t, dir)
	caFile := filepath.Join(dir, "client-ca.pem")
	tlstest.WriteFile(t, caFile, ca.CertPEM)
	mtls, err := Server(config.TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}, logger(&testenv.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Server(config.TLSConfig{CertFile: certFile, KeyFile: keyFile}, logger(&testenv.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	mtlsAddr, plainAddr := serve(t, mtls), serve(t, plain)

	clientCert := func(p tlstest.Pair) []tls.Certificate {
		c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	good, foreign := clientCert(ca.Client(t, "alice")), clientCert(other.Client(t, "mallory"))
	tests := []struct {
		name   string
		addr   string
		client *tls.Config
		ok     bool
		// wantErr is in the error of a refused connection.
		wantErr string
	}{
		{name: "mTLS with a certificate of the CA", addr: mtlsAddr, client: &tls.Config{RootCAs: ca.Pool(), Certificates: good}, ok: true},
		{name: "mTLS without a client certificate", addr: mtlsAddr, client: &tls.Config{RootCAs: ca.Pool()}, wantErr: "certificate required"},
		{name: "mTLS with a certificate of another CA", addr: mtlsAddr, client: &tls.Config{RootCAs: ca.Pool(),
			// Sent even though the server asks for its own CA's certificates.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign[0], nil }}, wantErr: "unknown certificate authority"},
		{name: "TLS 1.2", addr: plainAddr, client: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, ok: true},
		{name: "TLS 1.3", addr: plainAddr, client: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}, ok: true},
		{name: "TLS 1.1 refused", addr: plainAddr, client: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: "protocol version"},
		{name: "client not trusting the CA", addr: plainAddr, client: &tls.Config{RootCAs: other.Pool()}, wantErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tt.client, DisableKeepAlives: true}}
			resp, err := hc.Get("https://" + tt.addr + "/")
			if err == nil {
				_ = resp.Body.Close()
			}
			switch {
			case tt.ok && err != nil:
				t.Fatalf("request failed: %v", err)
			case tt.ok && resp.StatusCode != http.StatusOK:
				t.Fatalf("status %s", resp.Status)
			case !tt.ok && err == nil:
				t.Fatalf("request succeeded (%s), want a refused handshake", resp.Status)
			case !tt.ok && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
