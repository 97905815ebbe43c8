package clientconfig

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// testCAPEM stands for a PEM CA certificate (only its framing is checked
// here; the client parses it).
const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func resolveFixture() *File {
	ca := "/etc/ca.pem"
	return &File{
		CurrentContext: "a",
		Clusters: []Cluster{
			{Name: "a-cluster", BaseURL: "https://a.example.com", CertificateAuthority: &ca,
				CertificateAuthorityData: base64.StdEncoding.EncodeToString([]byte(testCAPEM))},
			{Name: "b-cluster", BaseURL: ""},
		},
		Users: []User{
			{Name: "a-user", Type: UserTypeOAuth, Token: "a-token"},
			{Name: "b-user", Type: UserTypeNoAuth, Token: "stale"},
		},
		Contexts: []Context{
			{Name: "a", Cluster: "a-cluster", User: "a-user", Workspace: "ws-a", Preferences: &Preferences{OutputFormat: "yaml"}},
			{Name: "b", Cluster: "b-cluster", User: "b-user"},
		},
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name      string
		file      *File
		overrides Overrides
		env       map[string]string
		want      Settings // Context, Cluster and User are not compared
	}{
		{
			name: "current context",
			file: resolveFixture(),
			want: Settings{ContextName: "a", BaseURL: "https://a.example.com", CertificateAuthority: "/etc/ca.pem", CertificateAuthorityData: []byte(testCAPEM),
				Token: "a-token", TokenSource: TokenSourceConfig, Workspace: "ws-a", OutputFormat: "yaml"},
		},
		{
			name: "environment beats context",
			file: resolveFixture(),
			env: map[string]string{EnvBaseURL: "http://env:1", EnvAccessToken: "env-token", EnvWorkspace: "ws-env",
				EnvOutputFormat: "json", EnvCurrentContext: "a"},
			want: Settings{ContextName: "a", BaseURL: "http://env:1", CertificateAuthority: "/etc/ca.pem", CertificateAuthorityData: []byte(testCAPEM),
				Token: "env-token", TokenSource: TokenSourceEnv, Workspace: "ws-env", OutputFormat: "json"},
		},
		{
			name:      "flags beat environment",
			file:      resolveFixture(),
			overrides: Overrides{Context: "a", BaseURL: "http://flag:2", Workspace: "ws-flag", OutputFormat: "table"},
			env:       map[string]string{EnvBaseURL: "http://env:1", EnvWorkspace: "ws-env", EnvOutputFormat: "json", EnvCurrentContext: "b"},
			want: Settings{ContextName: "a", BaseURL: "http://flag:2", CertificateAuthority: "/etc/ca.pem", CertificateAuthorityData: []byte(testCAPEM),
				Token: "a-token", TokenSource: TokenSourceConfig, Workspace: "ws-flag", OutputFormat: "table"},
		},
		{
			name: "environment selects context; no-auth user sends no token; defaults",
			file: resolveFixture(),
			env:  map[string]string{EnvCurrentContext: "b"},
			want: Settings{ContextName: "b", BaseURL: DefaultBaseURL, OutputFormat: OutputTable},
		},
		{
			name: "empty file gives defaults",
			file: &File{},
			want: Settings{BaseURL: DefaultBaseURL, OutputFormat: OutputTable},
		},
		{
			name: "NMP_ACCESS_TOKEN without any context",
			file: &File{},
			env:  map[string]string{EnvAccessToken: "env-token"},
			want: Settings{BaseURL: DefaultBaseURL, OutputFormat: OutputTable, Token: "env-token", TokenSource: TokenSourceEnv},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.file.Resolve(tt.overrides, envFunc(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got.Context, got.Cluster, got.User = nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestResolveUnknownContext(t *testing.T) {
	tests := []struct {
		name      string
		overrides Overrides
		env       map[string]string
	}{
		{"flag", Overrides{Context: "nope"}, nil},
		{"environment", Overrides{}, map[string]string{EnvCurrentContext: "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveFixture().Resolve(tt.overrides, envFunc(tt.env))
			if !errors.Is(err, ErrContextNotFound) {
				t.Errorf("err = %v, want ErrContextNotFound", err)
			}
		})
	}
}

func TestEnsureContext(t *testing.T) {
	f := &File{}
	c, created := f.EnsureContext("dev", "http://dev:8080")
	if !created || c.Cluster != "dev-cluster" || c.User != "dev-user" || f.CurrentContext != "dev" {
		t.Fatalf("first context: %+v created=%v current=%q", c, created, f.CurrentContext)
	}
	if cl := f.Cluster("dev-cluster"); cl == nil || cl.BaseURL != "http://dev:8080" {
		t.Errorf("cluster = %+v", cl)
	}
	if u := f.User("dev-user"); u == nil || u.Type != UserTypeNoAuth {
		t.Errorf("user = %+v", u)
	}
	if _, created := f.EnsureContext("prod", "https://prod"); !created || f.CurrentContext != "dev" {
		t.Errorf("second context: created=%v, current=%q (must stay dev)", created, f.CurrentContext)
	}
	if _, created := f.EnsureContext("dev", "ignored"); created || len(f.Contexts) != 2 {
		t.Error("existing context re-created")
	}
	if err := f.Validate(); err != nil {
		t.Error(err)
	}
	// An orphan cluster with the derived name is reused, not duplicated.
	g := &File{Clusters: []Cluster{{Name: "x-cluster", BaseURL: "http://keep"}}}
	g.EnsureContext("x", "http://new")
	if len(g.Clusters) != 1 || g.Clusters[0].BaseURL != "http://keep" {
		t.Errorf("clusters = %+v", g.Clusters)
	}
}

// TestCertificateAuthorityDataValidated: certificate_authority_data must be
// base64 of PEM certificates, or the file is invalid.
func TestCertificateAuthorityDataValidated(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{name: "base64 of PEM", data: base64.StdEncoding.EncodeToString([]byte(testCAPEM))},
		{name: "empty", data: ""},
		{name: "not base64", data: "-----BEGIN CERTIFICATE-----", wantErr: "not base64"},
		{name: "base64 of something else", data: base64.StdEncoding.EncodeToString([]byte("hello")), wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &File{Clusters: []Cluster{{Name: "c", BaseURL: "https://c", CertificateAuthorityData: tt.data}}}
			err := f.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `cluster "c"`)):
				t.Fatalf("Validate = %v, want an error naming the cluster and containing %q", err, tt.wantErr)
			}
		})
	}
}
