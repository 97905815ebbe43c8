package clientconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func addContext(name string) func(*File) error {
	return func(f *File) error {
		f.EnsureContext(name, DefaultBaseURL)
		return nil
	}
}

func TestUpdateCreatesPrivateDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nmp")
	path := filepath.Join(dir, "config.yaml")
	if err := Update(path, addContext("a")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want os.FileMode
	}{
		{"directory", dir, 0o700},
		{"config file", path, 0o600},
		{"lock file", path + ".lock", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mode(t, tt.path); got != tt.want {
				t.Errorf("mode = %04o, want %04o", got, tt.want)
			}
		})
	}
}

func TestLoosePermissionsWarnedAndFixed(t *testing.T) {
	tests := []struct {
		name     string
		mode     os.FileMode
		wantWarn bool
	}{
		{"private", 0o600, false},
		{"group readable", 0o640, true},
		{"world readable", 0o644, true},
		{"group writable", 0o620, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, "current_context: ''\n", tt.mode)
			var warn bytes.Buffer
			if _, err := Load(path, &warn); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(warn.String(), "accessible by group or others"); got != tt.wantWarn {
				t.Errorf("warning = %q, want warning %v", warn.String(), tt.wantWarn)
			}
			if err := Update(path, func(*File) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if got := mode(t, path); got != 0o600 {
				t.Errorf("mode after write = %04o, want 0600", got)
			}
			warn.Reset()
			if _, err := Load(path, &warn); err != nil || warn.Len() != 0 {
				t.Errorf("after the fix: err %v, warning %q", err, warn.String())
			}
		})
	}
}

func TestUpdateReplacesFileAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := Update(path, addContext("a")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	if err := Update(path, addContext("b")); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Error("file rewritten in place, want a new file renamed over it")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "config.yaml,config.yaml.lock" {
		t.Errorf("directory holds %v, want only the config and its lock", names)
	}
}

func TestReadersNeverSeePartialFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := Update(path, addContext("seed")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var readerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			f, err := Load(path, nil)
			if err == nil && len(f.Contexts) == 0 {
				err = errors.New("read an empty config")
			}
			if err != nil {
				readerErr = err
				return
			}
		}
	})
	for i := range 20 {
		if err := Update(path, addContext(fmt.Sprintf("ctx-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if readerErr != nil {
		t.Fatal(readerErr)
	}
}

func TestUpdateWritesNothingOnError(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(*File) error
		wantErr string
	}{
		{"callback error", func(*File) error { return errors.New("boom") }, "boom"},
		{"invalid result", func(f *File) error { f.CurrentContext = "missing"; return nil }, "refusing to write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := Update(path, addContext("a")); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			if err := Update(path, tt.fn); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Update() = %v, want %q", err, tt.wantErr)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("file changed")
			}
		})
	}
}

func TestUpdateRefusesInvalidExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "current_context: nope\n", 0o600)
	called := false
	err := Update(path, func(*File) error { called = true; return nil })
	if err == nil || called {
		t.Errorf("Update() = %v, callback called %v; want an error before the callback", err, called)
	}
}

func TestUpdateMigratesLegacyUsersOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "users:\n  - {name: u, type: api-key, token: k}\n", 0o600)
	if err := Update(path, func(*File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "type: oauth") || strings.Contains(string(data), "api-key") {
		t.Errorf("file not migrated:\n%s", data)
	}
}

func TestUpdateWritesThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "config.yaml")
	writeFile(t, target, "", 0o600)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Update(link, addContext("a")); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v", err)
	}
	if f, err := Load(target, nil); err != nil || f.Context("a") == nil {
		t.Errorf("target not updated: %v", err)
	}
}

func TestConcurrentUpdatesFromGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- Update(path, addContext(fmt.Sprintf("ctx-%d", i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	assertContexts(t, path, "ctx-", n)
}

// Environment of TestHelperProcessUpdate, run as a child process.
const (
	helperPathEnv   = "NMP_CLIENTCONFIG_HELPER_PATH"
	helperPrefixEnv = "NMP_CLIENTCONFIG_HELPER_PREFIX"
	perProcess      = 5
)

func TestConcurrentUpdatesFromProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	const processes = 4
	var wg sync.WaitGroup
	errs := make(chan error, processes)
	for p := range processes {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessUpdate$")
		cmd.Env = append(os.Environ(), helperPathEnv+"="+path, fmt.Sprintf("%s=proc%d-", helperPrefixEnv, p))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %s", err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assertContexts(t, path, "proc", processes*perProcess)
}

// TestHelperProcessUpdate is not a test: TestConcurrentUpdatesFromProcesses
// runs it in child processes to add contexts concurrently.
func TestHelperProcessUpdate(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	for i := range perProcess {
		if err := Update(path, addContext(fmt.Sprintf("%s%d", os.Getenv(helperPrefixEnv), i))); err != nil {
			t.Fatal(err)
		}
	}
}

func assertContexts(t *testing.T, path, prefix string, want int) {
	t.Helper()
	f, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, c := range f.Contexts {
		if strings.HasPrefix(c.Name, prefix) {
			got++
		}
	}
	if got != want {
		t.Errorf("%d contexts with prefix %q, want %d (a concurrent update was lost)", got, prefix, want)
	}
}
