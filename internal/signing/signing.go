// Package signing holds the platform's own token-signing key: the RSA key
// that signs scoped access keys, the retired keys whose tokens are still
// accepted during a planned rotation, and the JSON Web Key Set published
// at /apis/auth/jwks.
//
// The private key is read from auth.token_signing.private_key_file or,
// with SQLite and no file configured, generated once into the data
// directory. Errors name the file, never its content.
package signing

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/config"
)

// MinBits is the smallest RSA key accepted; generated keys have
// GeneratedBits.
const (
	MinBits       = 2048
	GeneratedBits = 2048
)

// Keys is the loaded signing key and the previous public keys. It is
// immutable and safe for concurrent use.
type Keys struct {
	keyID  string
	signer jose.Signer
	public map[string]*rsa.PublicKey // current and previous, by kid
	order  []string                  // kids in JWKS order: current first
}

// Load reads the signing key named by cfg (see the package comment) and
// the public keys of auth.token_signing.previous_keys. A key file readable
// by group or others is used, with a warning.
func Load(cfg *config.Config, log *slog.Logger) (*Keys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ts := cfg.Auth.TokenSigning
	path := cfg.TokenSigningKeyFile()
	explicit := ts.PrivateKeyFile != nil && *ts.PrivateKeyFile != ""
	if path == "" {
		return nil, errors.New("auth.token_signing.private_key_file: not set and no data directory is known")
	}
	priv, err := readPrivate(path, log)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !explicit && cfg.DatabaseKind() == config.DatabaseSQLite:
		if priv, err = generate(path); err != nil {
			return nil, err
		}
		log.Info("generated the token signing key", "file", path, "key_id", ts.KeyID, "bits", GeneratedBits)
	case errors.Is(err, fs.ErrNotExist) && cfg.DatabaseKind() == config.DatabasePostgres && !explicit:
		return nil, fmt.Errorf("auth.token_signing.private_key_file is required with PostgreSQL (every replica must sign with the same key)")
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("token signing key %s: file does not exist", path)
	default:
		return nil, err
	}
	prev := make(map[string]*rsa.PublicKey, len(ts.PreviousKeys))
	var order []string
	for i, pk := range ts.PreviousKeys {
		pub, err := readPublic(pk.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.token_signing.previous_keys[%d]: %w", i, err)
		}
		prev[pk.KeyID] = pub
		order = append(order, pk.KeyID)
	}
	k, err := New(ts.KeyID, priv, prev)
	if err != nil {
		return nil, err
	}
	k.order = append([]string{ts.KeyID}, order...)
	return k, nil
}

// New builds Keys from a private key and the previous public keys by key
// id (used by Load, and by tests that need keys without files).
func New(keyID string, priv *rsa.PrivateKey, previous map[string]*rsa.PublicKey) (*Keys, error) {
	if keyID == "" {
		return nil, errors.New("signing: empty key id")
	}
	if err := checkPrivate(priv); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	k := &Keys{keyID: keyID, signer: signer, public: map[string]*rsa.PublicKey{keyID: &priv.PublicKey}, order: []string{keyID}}
	for _, kid := range slices.Sorted(maps.Keys(previous)) {
		if kid == keyID || kid == "" {
			return nil, fmt.Errorf("signing: previous key id %q is empty or the current key id", kid)
		}
		if err := checkPublic(previous[kid]); err != nil {
			return nil, fmt.Errorf("signing: previous key %q: %w", kid, err)
		}
		k.public[kid] = previous[kid]
		k.order = append(k.order, kid)
	}
	return k, nil
}

// KeyID is the kid of the current signing key.
func (k *Keys) KeyID() string { return k.keyID }

// Sign serializes claims as JSON and signs them: a compact RS256 JWS with
// the header {"alg":"RS256","kid":<key id>,"typ":"JWT"}.
func (k *Keys) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("signing: encode claims: %w", err)
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return jws.CompactSerialize()
}

// JWKS is the public key set: the current key first, then the previous
// keys, each with use "sig" and alg "RS256".
func (k *Keys) JWKS() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.order))}
	for _, kid := range k.order {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public[kid], KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"})
	}
	return set
}

// PublicKey is the public key of kid: the current or a previous key.
func (k *Keys) PublicKey(kid string) (*rsa.PublicKey, bool) {
	pub, ok := k.public[kid]
	return pub, ok
}

// readPrivate reads and checks a PEM RSA private key (PKCS #1 or #8).
// A missing file is an error wrapping fs.ErrNotExist.
func readPrivate(path string, log *slog.Logger) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("token signing key %s: %w", path, errors.Unwrap(err))
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the token signing key file is accessible by group or others; restrict it to mode 0600",
			"file", path, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	key, err := parsePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivate(data []byte) (*rsa.PrivateKey, error) {
	key, err := DecodeRSAPrivateKey(data)
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(key); err != nil {
		return nil, err
	}
	return key, nil
}

// DecodeRSAPrivateKey decodes the first PEM block of data as an RSA
// private key (PKCS #8 "PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY"). It
// checks no size; its errors never include the key material.
func DecodeRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("invalid PKCS #8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("invalid PKCS #1 private key")
		}
		key = k
	default:
		return nil, fmt.Errorf("unsupported PEM type %q (want PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
	return key, nil
}

func checkPrivate(key *rsa.PrivateKey) error {
	if key == nil {
		return errors.New("no RSA key")
	}
	if err := checkPublic(&key.PublicKey); err != nil {
		return err
	}
	if err := key.Validate(); err != nil {
		return errors.New("invalid RSA key")
	}
	return nil
}

func checkPublic(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil {
		return errors.New("no RSA key")
	}
	if pub.N.BitLen() < MinBits {
		return fmt.Errorf("RSA key has %d bits, at least %d required", pub.N.BitLen(), MinBits)
	}
	return nil
}

// readPublic reads a previous key's PEM file: an RSA public key (PKIX
// "PUBLIC KEY" or PKCS #1 "RSA PUBLIC KEY") or a private key, of which
// only the public half is kept.
func readPublic(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("public key %s: no PEM block", path)
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: invalid PKIX public key", path)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: not an RSA key", path)
		}
		pub = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: invalid PKCS #1 public key", path)
		}
		pub = k
	case "PRIVATE KEY", "RSA PRIVATE KEY":
		k, err := parsePrivate(data)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		pub = &k.PublicKey
	default:
		return nil, fmt.Errorf("public key %s: unsupported PEM type %q", path, block.Type)
	}
	if err := checkPublic(pub); err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// generate creates a new key in path, mode 0600, in a directory created
// 0700 if needed. The file appears complete or not at all (a private
// temporary file hard-linked into place, so an existing key is never
// replaced; renamed where the file system has no hard links); a
// concurrent starter that loses the race reads the winner's key.
func generate(path string) (_ *rsa.PrivateKey, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token signing key: create directory %s: %w", dir, errors.Unwrap(err))
	}
	key, err := rsa.GenerateKey(rand.Reader, GeneratedBits)
	if err != nil {
		return nil, fmt.Errorf("token signing key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("token signing key: encode: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".token-signing-key-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("token signing key: write %s: %w", dir, errors.Unwrap(err))
	}
	defer func() {
		// The temporary file is a copy of the private key: it must go
		// (after a rename it is gone already).
		if rerr := os.Remove(tmp.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("token signing key: remove temporary file: %w", rerr))
		}
	}()
	if err := writeAndSync(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("token signing key: write %s: %w", path, err)
	}
	lerr := os.Link(tmp.Name(), path)
	switch {
	case lerr == nil:
		return key, nil
	case errors.Is(lerr, fs.ErrExist):
		return readPrivate(path, slog.New(slog.DiscardHandler)) // another starter won
	}
	if _, serr := os.Lstat(path); serr == nil {
		return readPrivate(path, slog.New(slog.DiscardHandler))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("token signing key: write %s: %w", path, errors.Unwrap(err))
	}
	return key, nil
}

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
