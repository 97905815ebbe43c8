// Package opatest runs a real OPA server (the opa binary) with the shipped
// Rego policy for tests of the external decision point. Tests that use it
// skip when opa is not on PATH (and fail under NMP_TEST_REQUIRE_ALL=1).
package opatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Policy is what OPA serves: the shipped Rego files and data.authz.
type Policy struct {
	// Data is data.authz (authz.Engine.DataDocument()).
	Data map[string]any
	// Revision, when not empty, makes the directory a bundle (with a
	// .manifest of that revision and root authz) loaded with --bundle:
	// OPA then reports it under data.system.bundles and refuses writes
	// below authz. Empty loads the files as plain data, which SetData can
	// replace.
	Revision string
}

// OPA is a running opa server.
type OPA struct {
	// URL is the base URL (http://127.0.0.1:<port>).
	URL  string
	t    testing.TB
	bin  string
	dir  string
	addr string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	logs *testenv.Buffer
}

// Start writes p into a temporary directory and starts opa on a free
// loopback port; it is killed at test cleanup.
func Start(t testing.TB, p Policy) *OPA {
	t.Helper()
	bin, err := exec.LookPath("opa")
	if err != nil {
		testenv.Missing(t, "opa", "not on PATH")
	}
	dir := t.TempDir()
	o := &OPA{t: t, bin: bin, dir: dir, logs: &testenv.Buffer{}}
	o.write(p)
	t.Cleanup(o.Kill)
	// The port is picked by listening on :0 and closing; another process
	// may take it meanwhile, so a start that fails is retried elsewhere.
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.addr = ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		o.URL = "http://" + o.addr
		if err := o.start(); err == nil {
			return o
		} else if attempt == 4 {
			t.Fatalf("opa did not start: %v\n%s", err, o.logs.String())
		}
	}
}

func (o *OPA) write(p Policy) {
	o.t.Helper()
	policyDir := filepath.Join(o.dir, "policy")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		o.t.Fatal(err)
	}
	var files []string
	for _, f := range authz.PolicyFiles() {
		path := filepath.Join(policyDir, f.Name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			o.t.Fatal(err)
		}
		files = append(files, path)
	}
	data, err := json.Marshal(map[string]any{"authz": p.Data})
	if err != nil {
		o.t.Fatal(err)
	}
	dataPath := filepath.Join(o.dir, "data.json")
	if err := os.WriteFile(dataPath, data, 0o644); err != nil {
		o.t.Fatal(err)
	}
	if p.Revision == "" {
		o.args = append(files, dataPath)
		return
	}
	manifest, err := json.Marshal(map[string]any{"revision": p.Revision, "roots": []string{"authz"}, "rego_version": 1})
	if err != nil {
		o.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.dir, ".manifest"), manifest, 0o644); err != nil {
		o.t.Fatal(err)
	}
	o.args = []string{"--bundle", o.dir}
}

// start runs opa on o.addr and waits until it answers /health.
func (o *OPA) start() error {
	args := append([]string{"run", "--server", "--addr", o.addr, "--disable-telemetry", "--log-level", "error"}, o.args...)
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout, cmd.Stderr = o.logs, o.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	o.cmd, o.done = cmd, done
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("opa exited: %v", cmd.ProcessState)
		default:
		}
		if resp, err := client.Get(o.URL + "/health"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	o.Kill()
	return fmt.Errorf("opa did not answer /health within 30s")
}

// Kill kills the process (also a stopped one) and waits for it to end.
func (o *OPA) Kill() {
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGKILL)
	<-o.done
	o.cmd = nil
}

// Restart starts a killed OPA again on the same address with the same
// files.
func (o *OPA) Restart() {
	o.t.Helper()
	if o.cmd != nil {
		o.t.Fatal("opatest: Restart of a running opa")
	}
	if err := o.start(); err != nil {
		o.t.Fatalf("opa restart: %v\n%s", err, o.logs.String())
	}
}

// Stop suspends the process (SIGSTOP): the kernel still accepts
// connections, nothing answers them — a hung OPA.
func (o *OPA) Stop() { o.signal(syscall.SIGSTOP) }

// Continue resumes a stopped process (SIGCONT).
func (o *OPA) Continue() { o.signal(syscall.SIGCONT) }

func (o *OPA) signal(sig syscall.Signal) {
	o.t.Helper()
	if o.cmd == nil {
		o.t.Fatal("opatest: opa is not running")
	}
	if err := o.cmd.Process.Signal(sig); err != nil {
		o.t.Fatal(err)
	}
}

// SetData replaces data.authz (only when started without a Revision).
func (o *OPA) SetData(data map[string]any) {
	o.t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		o.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, o.URL+"/v1/data/authz", bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer testenv.Close(o.t, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		o.t.Fatalf("PUT /v1/data/authz: status %d", resp.StatusCode)
	}
}

// Rewrite replaces the files of a killed OPA (Restart then serves them).
func (o *OPA) Rewrite(p Policy) {
	o.t.Helper()
	if o.cmd != nil {
		o.t.Fatal("opatest: Rewrite of a running opa")
	}
	o.write(p)
}

// Logs is what opa wrote so far.
func (o *OPA) Logs() string { return o.logs.String() }
