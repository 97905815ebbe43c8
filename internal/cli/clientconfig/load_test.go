package clientconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not subject to umask
		t.Fatal(err)
	}
}

func TestLoadMissingFileIsEmpty(t *testing.T) {
	f, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil)
	if err != nil || f.CurrentContext != "" || len(f.Contexts) != 0 {
		t.Fatalf("Load = %+v, %v", f, err)
	}
}

const fullConfig = `# a comment (comments are not preserved)
current_context: default
clusters:
  - name: default-cluster
    base_url: https://nmp.example.com
    certificate_authority: null
    proxy_url: http://proxy:3128
users:
  - name: default-user
    type: oauth
    token: tok
    refresh_token: rt
    scope: openid platform:read
    future_field: {nested: [1, 2]}
contexts:
  - name: default
    cluster: default-cluster
    user: default-user
    workspace: ml-team
    preferences:
      output_format: table
      color: false
    labels: {team: ml}
top_level_unknown: "123"
`

func TestRoundTripPreservesUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, fullConfig, 0o600)
	if err := Update(path, func(f *File) error {
		f.Contexts[0].Workspace = "other"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(strings.Replace(fullConfig, "workspace: ml-team", "workspace: other", 1)), &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("round trip changed the file:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if !strings.Contains(string(data), `top_level_unknown: "123"`) {
		t.Errorf("a quoted string lost its quotes:\n%s", data)
	}
}

func TestValidate(t *testing.T) {
	base := func() *File {
		return &File{
			CurrentContext: "a",
			Clusters:       []Cluster{{Name: "a-cluster", BaseURL: "http://localhost:8080"}},
			Users:          []User{{Name: "a-user", Type: UserTypeNoAuth}},
			Contexts:       []Context{{Name: "a", Cluster: "a-cluster", User: "a-user"}},
		}
	}
	tests := []struct {
		name    string
		mutate  func(f *File)
		wantErr string
	}{
		{"valid", func(*File) {}, ""},
		{"empty file", func(f *File) { *f = File{} }, ""},
		{"dangling current context", func(f *File) { f.CurrentContext = "b" }, `unknown context "b"`},
		{"dangling cluster", func(f *File) { f.Contexts[0].Cluster = "x" }, `unknown cluster "x"`},
		{"dangling user", func(f *File) { f.Contexts[0].User = "x" }, `unknown user "x"`},
		{"duplicate context", func(f *File) { f.Contexts = append(f.Contexts, f.Contexts[0]) }, `context name "a" is not unique`},
		{"duplicate cluster", func(f *File) { f.Clusters = append(f.Clusters, f.Clusters[0]) }, `cluster name "a-cluster" is not unique`},
		{"unnamed user", func(f *File) { f.Users = append(f.Users, User{}) }, "a user has no name"},
		{"bad base URL", func(f *File) { f.Clusters[0].BaseURL = "localhost:8080" }, "invalid base URL"},
		{"bad output format", func(f *File) { f.Contexts[0].Preferences = &Preferences{OutputFormat: "xml"} }, "invalid output_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.mutate(f)
			err := f.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadRejectsInvalidFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"not YAML", "current_context: [", "not valid"},
		{"wrong type", "contexts: 3", "not valid"},
		{"dangling reference", "contexts:\n  - {name: a, cluster: c, user: u}\n", `unknown cluster "c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, tt.content, 0o600)
			if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func decodeJWT(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("not an unsigned JWT: %q", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestLegacyAPIKeyMigration(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		wantType  string
		wantToken string // "" with wantEmail set means an unsigned JWT
		wantEmail string
	}{
		{"email becomes unsigned JWT", "{name: u, type: api-key, token: alice@example.com}", UserTypeOAuth, "", "alice@example.com"},
		{"opaque key becomes bearer token", "{name: u, type: api-key, token: nmp_ak_123}", UserTypeOAuth, "nmp_ak_123", ""},
		{"api_key field", "{name: u, type: api-key, api_key: bob@example.com}", UserTypeOAuth, "", "bob@example.com"},
		{"display-name address is not email-like", "{name: u, type: api-key, token: 'Bob <bob@example.com>'}", UserTypeOAuth, "Bob <bob@example.com>", ""},
		{"empty key", "{name: u, type: api-key}", UserTypeNoAuth, "", ""},
		{"oauth untouched", "{name: u, type: oauth, token: carol@example.com}", UserTypeOAuth, "carol@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, "users:\n  - "+tt.user+"\n", 0o600)
			before := time.Now().Unix()
			f, err := Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			u := f.Users[0]
			if u.Type != tt.wantType {
				t.Errorf("type = %q, want %q", u.Type, tt.wantType)
			}
			if _, ok := u.Extra[legacyAPIKeyField]; ok {
				t.Error("api_key field kept")
			}
			if tt.wantEmail == "" {
				if u.Token != tt.wantToken {
					t.Errorf("token = %q, want %q", u.Token, tt.wantToken)
				}
				return
			}
			header, claims := decodeJWT(t, u.Token)
			if header["alg"] != "none" || header["typ"] != "JWT" {
				t.Errorf("header = %v", header)
			}
			iat, _ := claims["iat"].(float64)
			if claims["sub"] != tt.wantEmail || claims["email"] != tt.wantEmail || int64(iat) < before || int64(iat) > time.Now().Unix() {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}

func TestUnsignedJWTFormat(t *testing.T) {
	tok, err := UnsignedJWT(map[string]string{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0."; tok != want {
		t.Errorf("UnsignedJWT = %q, want %q", tok, want)
	}
}
