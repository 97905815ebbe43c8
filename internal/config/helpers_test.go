package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testHome = "/home/test"

var testDataDir = filepath.Join(testHome, ".local", "share", "nmp")

// testEnviron is a minimal environment with a known HOME.
func testEnviron(extra ...string) []string {
	return append([]string{"HOME=" + testHome}, extra...)
}

// testDefaults is Default with HOME=/home/test and no XDG_DATA_HOME.
func testDefaults() *Config {
	return defaults(environLookup(testEnviron()))
}

func environLookup(environ []string) func(string) (string, bool) {
	env := environMap(environ)
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// writeConfig writes content to a config file in a temporary directory.
func writeConfig(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nmp.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadYAML loads content as the config file plus the test environment;
// path is the file written.
func loadYAML(t testing.TB, content string, env ...string) (*Config, []string, string, error) {
	t.Helper()
	path := writeConfig(t, content)
	cfg, warnings, err := Load(LoadOptions{File: path, Environ: testEnviron(env...)})
	return cfg, warnings, path, err
}

// errLines splits a joined error into its lines, with path replaced by FILE.
func errLines(err error, path string) []string {
	if err == nil {
		return nil
	}
	s := err.Error()
	if path != "" {
		s = strings.ReplaceAll(s, path, "FILE")
	}
	return strings.Split(s, "\n")
}

func replaceAll(lines []string, old, repl string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.ReplaceAll(l, old, repl)
	}
	return out
}

// requireLines fails unless got holds exactly want (in any order).
func requireLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// unsupportedEntry is the unsupportedKeys entry of key.
func unsupportedEntry(key string) (unsupportedKey, bool) {
	i := slices.IndexFunc(unsupportedKeys, func(u unsupportedKey) bool { return u.key == key })
	if i < 0 {
		return unsupportedKey{}, false
	}
	return unsupportedKeys[i], true
}
