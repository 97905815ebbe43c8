package clientconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "custom.yaml")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	xdgWithNMP := filepath.Join(dir, "xdg1")
	if err := os.MkdirAll(filepath.Join(xdgWithNMP, "nmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	xdgWithoutNMP := filepath.Join(dir, "xdg2")
	home := filepath.Join(dir, "home")

	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"NMP_CONFIG_FILE wins", map[string]string{EnvConfigFile: existing, "XDG_CONFIG_HOME": xdgWithNMP, "HOME": home}, existing, ""},
		{"NMP_CONFIG_FILE must exist", map[string]string{EnvConfigFile: filepath.Join(dir, "missing.yaml"), "HOME": home}, "", "does not exist"},
		{"NMP_CONFIG_FILE must not be a directory", map[string]string{EnvConfigFile: dir, "HOME": home}, "", "is a directory"},
		{"XDG dir with nmp", map[string]string{"XDG_CONFIG_HOME": xdgWithNMP, "HOME": home}, filepath.Join(xdgWithNMP, "nmp", "config.yaml"), ""},
		{"XDG dir without nmp falls back to home", map[string]string{"XDG_CONFIG_HOME": xdgWithoutNMP, "HOME": home}, filepath.Join(home, ".config", "nmp", "config.yaml"), ""},
		{"relative XDG ignored", map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": home}, filepath.Join(home, ".config", "nmp", "config.yaml"), ""},
		{"home", map[string]string{"HOME": home}, filepath.Join(home, ".config", "nmp", "config.yaml"), ""},
		{"USERPROFILE without HOME", map[string]string{"USERPROFILE": home}, filepath.Join(home, ".config", "nmp", "config.yaml"), ""},
		{"no home", map[string]string{}, "", "home directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Path(envFunc(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Path() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
