package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/signing"
)

// keyBits is the size of generated signing keys and the minimum accepted.
const keyBits = 2048

// LoadOrCreateKey returns the RSA signing key stored in path (PEM, PKCS #8
// "PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY"). A missing file is created
// with a new RSA 2048 key, mode 0600, in a directory created 0700 if
// needed; creation is atomic (a concurrent starter that loses the race
// reads the winner's key). Keys shorter than 2048 bits are refused.
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("dev IdP signing key: no file name")
	}
	data, err := os.ReadFile(path)
	if err == nil {
		return parseKey(data, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read dev IdP signing key: %w", err)
	}
	return createKey(path)
}

func createKey(path string) (_ *rsa.PrivateKey, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory for the dev IdP signing key: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate dev IdP signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode dev IdP signing key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	// Write a private temp file, then hard-link it into place: the key
	// appears complete or not at all, and an existing file is never
	// overwritten.
	tmp, err := os.CreateTemp(dir, ".dev-idp-signing-key-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("write dev IdP signing key: %w", err)
	}
	defer func() {
		// The temporary file holds a copy of the private key: it must go.
		if rerr := os.Remove(tmp.Name()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove temporary dev IdP signing key: %w", rerr))
		}
	}()
	if err := writeAndSync(tmp, pemBytes); err != nil {
		return nil, fmt.Errorf("write dev IdP signing key: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, fs.ErrExist):
		// Another process created it first: use its key.
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, fmt.Errorf("read dev IdP signing key: %w", rerr)
		}
		return parseKey(data, path)
	}
	// No hard links on this file system: create exclusively instead.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write dev IdP signing key: %w", err)
	}
	if err := writeAndSync(f, pemBytes); err != nil {
		// A partial key file would make every later start fail.
		return nil, fmt.Errorf("write dev IdP signing key: %w", errors.Join(err, os.Remove(path)))
	}
	return key, nil
}

// writeAndSync writes data to f, syncs and closes it.
func writeAndSync(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		return errors.Join(err, f.Close())
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}

// parseKey decodes a PEM RSA private key. Errors name the file but never
// include its content.
func parseKey(data []byte, path string) (*rsa.PrivateKey, error) {
	key, err := signing.DecodeRSAPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("dev IdP signing key %s: %w", path, err)
	}
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("dev IdP signing key %s: %w", path, err)
	}
	return key, nil
}

func checkKey(key *rsa.PrivateKey) error {
	if key == nil {
		return errors.New("no RSA key")
	}
	if key.N.BitLen() < keyBits {
		return fmt.Errorf("RSA key has %d bits, at least %d required", key.N.BitLen(), keyBits)
	}
	if err := key.Validate(); err != nil {
		return errors.New("invalid RSA key")
	}
	return nil
}

// keyID is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public
// key: stable across restarts with the same key file.
func keyID(pub *rsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// signingKey implements op.SigningKey.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey implements op.Key (one entry of the JWKS).
type publicKey struct {
	id  string
	key *rsa.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }
