// Package tlsconfig builds the *tls.Config of the server's listeners from
// service.tls: TLS 1.2 or newer, the certificate and key re-read when their
// files change (rotation without restart, as cert-manager renews them), and
// optional mutual TLS.
//
// Errors name the configuration key and the file, never the content of a
// file: a private key must not end up in a log.
package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/config"
)

// Configuration keys named in errors and logs.
const (
	keyCertFile     = "service.tls.cert_file"
	keyKeyFile      = "service.tls.key_file"
	keyClientCAFile = "service.tls.client_ca_file"
)

// CheckInterval is how often, at most, a handshake looks at the certificate
// and key files for a change.
const CheckInterval = time.Second

// Server returns the TLS configuration of a server listener for c, or nil
// and no error when TLS is not configured (neither cert_file nor key_file):
// the caller then serves plain text. Every listener may call it; each call
// reads the files anew and watches them on its own.
//
// The configuration requires TLS 1.2 or newer and, with client_ca_file, a
// client certificate that chains to one of its CAs
// (tls.RequireAndVerifyClientCert). Certificates come from GetCertificate,
// which re-reads the pair when a file has changed (checked at most once per
// CheckInterval) and keeps serving the previous pair when the new one does
// not load, logging the problem once. log may be nil (slog.Default).
//
// Unreadable, non-PEM or mismatched files are an error naming the key.
func Server(c config.TLSConfig, log *slog.Logger) (*tls.Config, error) {
	if !c.Enabled() {
		if c.ClientCAFile != "" {
			return nil, fmt.Errorf("%s needs %s and %s", keyClientCAFile, keyCertFile, keyKeyFile)
		}
		return nil, nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, fmt.Errorf("%s and %s must be set together", keyCertFile, keyKeyFile)
	}
	if log == nil {
		log = slog.Default()
	}
	r, err := newReloader(c.CertFile, c.KeyFile, log, time.Now)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
	}
	if c.ClientCAFile != "" {
		pool, err := LoadCertPool(keyClientCAFile, c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// LoadCertPool reads the PEM CA certificates of path into a new pool; key
// names the setting in errors. A file without a certificate is an error.
func LoadCertPool(key, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCertificates returns the CERTIFICATE blocks of PEM data, parsed.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// loadPair reads and checks the certificate and key files. Its errors name
// the key and the file, and never quote the files' content.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyCertFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyKeyFile, err)
	}
	if _, err := parseCertificates(certPEM); err != nil {
		return nil, fmt.Errorf("%s %s: %w", keyCertFile, certFile, err)
	}
	if !hasPrivateKeyBlock(keyPEM) {
		return nil, fmt.Errorf("%s %s: no PEM private key found", keyKeyFile, keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The messages of X509KeyPair are fixed texts ("private key does
		// not match public key", "failed to parse private key"); they hold
		// no key material.
		return nil, fmt.Errorf("%s %s and %s %s do not form a key pair: %w", keyCertFile, certFile, keyKeyFile, keyFile, err)
	}
	return &pair, nil
}

// hasPrivateKeyBlock reports whether data holds a PEM block whose type ends
// in "PRIVATE KEY" (PKCS #8, PKCS #1 RSA or SEC 1 EC).
func hasPrivateKeyBlock(data []byte) bool {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if bytes.HasSuffix([]byte(block.Type), []byte("PRIVATE KEY")) {
			return true
		}
	}
}

// stamp identifies one version of a file: a change of content written in
// place changes its modification time or size, and a replacement by rename
// (cert-manager, Kubernetes secret volumes' symlink swap) changes the file
// itself.
type stamp struct {
	info os.FileInfo
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	return stamp{fi}, err
}

func (s stamp) same(o stamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size() && os.SameFile(s.info, o.info)
}

// reloader serves the current certificate and reloads it when the files
// change.
type reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	loaded   [2]stamp  // the stamps of the files cert came from
	failed   [2]stamp  // the stamps of the last pair that failed to load
	failing  bool      // failed is set
	checked  time.Time // the last look at the files
	interval time.Duration
}

func newReloader(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*reloader, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile, log: log, now: now, interval: CheckInterval}
	stamps, err := r.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.loaded, r.checked = cert, stamps, now()
	r.logLoaded("TLS certificate loaded")
	return r, nil
}

func (r *reloader) stamps() ([2]stamp, error) {
	c, err := statFile(r.certFile)
	if err != nil {
		return [2]stamp{}, fmt.Errorf("%s: %w", keyCertFile, err)
	}
	k, err := statFile(r.keyFile)
	if err != nil {
		return [2]stamp{}, fmt.Errorf("%s: %w", keyKeyFile, err)
	}
	return [2]stamp{c, k}, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.interval {
		return r.cert, nil
	}
	r.checked = now
	stamps, err := r.stamps()
	if err == nil && stamps[0].same(r.loaded[0]) && stamps[1].same(r.loaded[1]) {
		return r.cert, nil
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadPair(r.certFile, r.keyFile)
	}
	if err != nil {
		// Log once per state of the files: a half-written pair is
		// retried at the next check without repeating the message.
		if !r.failing || !stamps[0].same(r.failed[0]) || !stamps[1].same(r.failed[1]) {
			r.log.Error("TLS certificate not reloaded; still serving the previous one", "error", err)
		}
		r.failed, r.failing = stamps, true
		return r.cert, nil
	}
	r.cert, r.loaded, r.failing = cert, stamps, false
	r.logLoaded("TLS certificate reloaded")
	return r.cert, nil
}

// logLoaded logs the subject and validity of the current leaf; it warns
// when the certificate is outside its validity period.
func (r *reloader) logLoaded(msg string) {
	leaf := r.cert.Leaf
	if leaf == nil {
		r.log.Info(msg, "cert_file", r.certFile)
		return
	}
	attrs := []any{"cert_file", r.certFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	now := r.now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		r.log.Warn(msg+", but it is not valid now", attrs...)
		return
	}
	r.log.Info(msg, attrs...)
}
