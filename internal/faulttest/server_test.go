//go:build faults

package faulttest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// binary is the nmp binary TestMain built.
var binary string

// raceBuild is set when the tests run with -race (racebuild_test.go).
var raceBuild bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nmp-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nmp")
	_, file, _, _ := runtime.Caller(0)
	args := []string{"build", "-buildvcs=false", "-o", binary}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/nmp")...)
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nmp:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// duration is the load duration: NMP_FAULT_DURATION, else short.
func duration(t *testing.T, short time.Duration) time.Duration {
	v := os.Getenv("NMP_FAULT_DURATION")
	if v == "" {
		return short
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("NMP_FAULT_DURATION=%q: want a positive Go duration", v)
	}
	return d
}

// serverOptions describe one nmp process.
type serverOptions struct {
	dataDir string
	dbURL   string // "" = SQLite in dataDir
	issuer  *oidctest.Issuer
	// extra is YAML appended under auth: (indented by the caller).
	extraAuth string
	// statementTimeout is entities.database_config.statement_timeout_seconds.
	statementTimeout int
	// port to listen on; 0 = a free one.
	port int
}

// proc is a running `nmp services run`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *testenv.Buffer
	done chan struct{}
}

const adminEmail = "admin@example.com"

// statementTimeout is the servers' operation timeout in seconds: short
// enough that a hang shows, long enough for serialized membership writes
// on a loaded 2-core machine.
const statementTimeout = 5

func startServer(t *testing.T, o serverOptions) *proc {
	t.Helper()
	if o.statementTimeout == 0 {
		o.statementTimeout = statementTimeout
	}
	port := o.port
	if port == 0 {
		port = freePort(t)
	}
	db := ""
	if o.dbURL != "" {
		db = fmt.Sprintf("    url: %q\n", o.dbURL)
	}
	cfg := fmt.Sprintf(`platform:
  data_dir: %q
service:
  host: 127.0.0.1
  port: %d
  log_level: warn
  shutdown_timeout_seconds: 5
auth:
  enabled: true
  admin_email: %s
  propagation_poll_interval_seconds: 0.05
  propagation_timeout_seconds: 5
  oidc:
    enabled: true
    issuer: %q
    client_id: nmp-cli
%sentities:
  db_health_check_interval_seconds: 1
  database_config:
%s    statement_timeout_seconds: %d
`, o.dataDir, port, adminEmail, o.issuer.URL, o.extraAuth, db, o.statementTimeout)
	cfgFile := filepath.Join(t.TempDir(), "nmp.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proc{url: "http://127.0.0.1:" + strconv.Itoa(port), logs: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, "services", "run", "--config", cfgFile)
	p.cmd.Env = append(os.Environ(), "NMP_CONFIG_FILE_PATH=")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("server output:\n%s", p.logs.String())
		}
	})
	if _, err := p.waitReady(60 * time.Second); err != nil {
		t.Fatalf("server not ready: %v\n%s", err, p.logs.String())
	}
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 15 s).
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("server did not stop within 15 s of SIGTERM")
	}
}

// ready reports whether /health/ready answers 200.
func (p *proc) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/health/ready", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady polls /health/ready until it answers 200 and returns how
// long that took.
func (p *proc) waitReady(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for !p.ready() {
		select {
		case <-p.done:
			return 0, fmt.Errorf("server exited")
		default:
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("not ready after %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), nil
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, ln)
	return ln.Addr().(*net.TCPAddr).Port
}
