package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/config"
)

var (
	keyOnce  sync.Once
	key2048  *rsa.PrivateKey
	key2048b *rsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if key2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if key2048b, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return key2048, key2048b
}

// testConfig is a SQLite configuration whose data directory is a fresh
// temporary directory.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{Environ: []string{"NMP_DATA_DIR=" + filepath.Join(t.TempDir(), "data")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.AccessKeys.Enabled = true
	return cfg
}

func writePEM(t *testing.T, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadGeneratesOwnerOnlyKeyAndReloadsIt(t *testing.T) {
	cfg := testConfig(t)
	k1, err := Load(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := cfg.TokenSigningKeyFile()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %#o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key (no temporary file left)", len(entries))
	}
	k2, err := Load(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := k1.PublicKey(k1.KeyID())
	p2, _ := k2.PublicKey(k2.KeyID())
	if !p1.Equal(p2) {
		t.Error("second start generated a new key instead of reading the first")
	}
	if p1.N.BitLen() != GeneratedBits {
		t.Errorf("generated %d bits, want %d", p1.N.BitLen(), GeneratedBits)
	}
}

func TestLoadRefuses(t *testing.T) {
	_, other := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, c *config.Config)
		want    string
		notWant string
	}{
		{"small key", func(t *testing.T, c *config.Config) {
			c.Auth.TokenSigning.PrivateKeyFile = new(writePEM(t, "PRIVATE KEY", pkcs8(t, small), 0o600))
		}, "RSA key has 1024 bits, at least 2048 required", ""},
		{"bad PEM", func(t *testing.T, c *config.Config) {
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := os.WriteFile(path, []byte("secret-material-not-pem"), 0o600); err != nil {
				t.Fatal(err)
			}
			c.Auth.TokenSigning.PrivateKeyFile = &path
		}, "no PEM block", "secret-material"},
		{"corrupt PKCS8", func(t *testing.T, c *config.Config) {
			c.Auth.TokenSigning.PrivateKeyFile = new(writePEM(t, "PRIVATE KEY", []byte("garbage-der"), 0o600))
		}, "invalid PKCS #8 private key", "garbage"},
		{"certificate instead of key", func(t *testing.T, c *config.Config) {
			c.Auth.TokenSigning.PrivateKeyFile = new(writePEM(t, "CERTIFICATE", []byte{1, 2, 3}, 0o600))
		}, `unsupported PEM type "CERTIFICATE"`, ""},
		{"explicit file missing", func(t *testing.T, c *config.Config) {
			c.Auth.TokenSigning.PrivateKeyFile = new(filepath.Join(t.TempDir(), "absent.pem"))
		}, "file does not exist", ""},
		{"postgres requires the file", func(t *testing.T, c *config.Config) {
			c.Entities.DatabaseConfig.URL = "postgres://db/nmp"
		}, "auth.token_signing.private_key_file is required with PostgreSQL", ""},
		{"previous key missing", func(t *testing.T, c *config.Config) {
			c.Auth.TokenSigning.PreviousKeys = []config.PreviousSigningKey{{KeyID: "old", PublicKeyFile: filepath.Join(t.TempDir(), "none.pem")}}
		}, "auth.token_signing.previous_keys[0]: public key", ""},
		{"previous key small", func(t *testing.T, c *config.Config) {
			der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
			c.Auth.TokenSigning.PreviousKeys = []config.PreviousSigningKey{{KeyID: "old", PublicKeyFile: writePEM(t, "PUBLIC KEY", der, 0o644)}}
		}, "RSA key has 1024 bits", ""},
		{"previous key not PEM", func(t *testing.T, c *config.Config) {
			_ = other
			path := filepath.Join(t.TempDir(), "p.pem")
			if err := os.WriteFile(path, []byte("nope"), 0o644); err != nil {
				t.Fatal(err)
			}
			c.Auth.TokenSigning.PreviousKeys = []config.PreviousSigningKey{{KeyID: "old", PublicKeyFile: path}}
		}, "no PEM block", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.mutate(t, cfg)
			_, err := Load(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error shows file content: %v", err)
			}
			if _, serr := os.Stat(cfg.TokenSigningKeyFile()); tt.name == "postgres requires the file" && serr == nil {
				t.Error("a key was generated with PostgreSQL")
			}
		})
	}
}

func TestLoadFormatsAndWarnings(t *testing.T) {
	k, prev := testKeys(t)
	tests := []struct {
		name     string
		typ      string
		der      []byte
		mode     os.FileMode
		wantWarn bool
	}{
		{"pkcs8 private", "PRIVATE KEY", pkcs8(t, k), 0o600, false},
		{"pkcs1 private", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), 0o400, false},
		{"group readable", "PRIVATE KEY", pkcs8(t, k), 0o640, true},
		{"world readable", "PRIVATE KEY", pkcs8(t, k), 0o604, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			path := writePEM(t, tt.typ, tt.der, tt.mode)
			if err := os.Chmod(path, tt.mode); err != nil { // umask
				t.Fatal(err)
			}
			cfg.Auth.TokenSigning.PrivateKeyFile = &path
			pkix, _ := x509.MarshalPKIXPublicKey(&prev.PublicKey)
			cfg.Auth.TokenSigning.PreviousKeys = []config.PreviousSigningKey{
				{KeyID: "old-pkix", PublicKeyFile: writePEM(t, "PUBLIC KEY", pkix, 0o644)},
				{KeyID: "old-pkcs1", PublicKeyFile: writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&prev.PublicKey), 0o644)},
				{KeyID: "old-private", PublicKeyFile: writePEM(t, "PRIVATE KEY", pkcs8(t, prev), 0o600)},
			}
			var logs bytes.Buffer
			keys, err := Load(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if cur, _ := keys.PublicKey("nemo-platform-signing"); !cur.Equal(&k.PublicKey) {
				t.Error("current key is not the file's")
			}
			for _, kid := range []string{"old-pkix", "old-pkcs1", "old-private"} {
				if pub, ok := keys.PublicKey(kid); !ok || !pub.Equal(&prev.PublicKey) {
					t.Errorf("previous key %s not loaded", kid)
				}
			}
			if _, ok := keys.PublicKey("other"); ok {
				t.Error("unknown kid found")
			}
			warned := strings.Contains(logs.String(), "accessible by group or others")
			if warned != tt.wantWarn {
				t.Errorf("warned %v, want %v: %s", warned, tt.wantWarn, logs.String())
			}
			if strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Error("key material logged")
			}
		})
	}
}

func TestSignAndJWKS(t *testing.T) {
	k, prev := testKeys(t)
	keys, err := New("current", k, map[string]*rsa.PublicKey{"old": &prev.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Sign(map[string]any{"sub": "alice", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != "RS256" || h.KeyID != "current" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header %+v", h)
	}
	payload, err := jws.Verify(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if string(payload) != `{"n":1,"sub":"alice"}` {
		t.Errorf("payload %s", payload)
	}
	if _, err := jws.Verify(&prev.PublicKey); err == nil {
		t.Error("verified with the wrong key")
	}

	raw, err := json.Marshal(keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS %s", raw)
	}
	for i, want := range []string{"current", "old"} {
		got := set.Keys[i]
		if got["kid"] != want || got["kty"] != "RSA" || got["use"] != "sig" || got["alg"] != "RS256" || got["n"] == nil || got["e"] == nil {
			t.Errorf("key %d: %v", i, got)
		}
		if got["d"] != nil || got["p"] != nil {
			t.Errorf("key %d publishes private parts", i)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	k, prev := testKeys(t)
	tests := []struct {
		name  string
		kid   string
		prevs map[string]*rsa.PublicKey
	}{
		{"empty kid", "", nil},
		{"previous equals current", "cur", map[string]*rsa.PublicKey{"cur": &prev.PublicKey}},
		{"previous empty kid", "cur", map[string]*rsa.PublicKey{"": &prev.PublicKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.kid, k, tt.prevs); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
