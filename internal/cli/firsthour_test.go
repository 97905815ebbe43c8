package cli_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/testenv"
)

// seedValidation is the Deployment Validation of the production-hardening
// checklist, exactly as the checklist writes it: three checks separated by
// blank lines.
const seedValidation = `# 1. Verify auth is enabled
curl -s ${BASE_URL}/apis/auth/discovery | python -m json.tool
# Expected: "auth_enabled": true

# 2. Verify unauthenticated requests are rejected
curl -s -o /dev/null -w "%{http_code}" ${BASE_URL}/v2/workspaces
# Expected: 401

# 3. Verify authenticated requests work
nmp auth login
nmp workspaces list
# Expected: success`

// raceBuild is set by racebuild_test.go when the tests run with -race, so
// that the nmp binary is built the same way and reuses the build cache.
var raceBuild bool

// buildNMP builds cmd/nmp into a new directory and returns the binary.
func buildNMP(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "go", "not on PATH; needed to build the nmp binary")
	}
	bin := filepath.Join(t.TempDir(), "bin", "nmp")
	args := []string{"build", "-buildvcs=false", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, "github.com/nmp-project/nmp/cmd/nmp")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// quickstartProcess is nmp quickstart running as its own process.
type quickstartProcess struct {
	banner *testenv.Buffer // everything it wrote to stderr
	cmd    *exec.Cmd
	done   chan error
	port   int
}

// startQuickstartBinary runs bin quickstart with env on free ports until
// one start gets them (another test may take a port freePort released) and
// the platform is ready; it is stopped at cleanup.
func startQuickstartBinary(t *testing.T, bin string, env []string) *quickstartProcess {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, idpPort := freePort(t), freePort(t)
		cmd := exec.Command(bin, "quickstart", "--port", strconv.Itoa(port), "--idp-port", strconv.Itoa(idpPort))
		cmd.Env = env
		q := &quickstartProcess{banner: &testenv.Buffer{}, cmd: cmd, done: make(chan error, 1), port: port}
		cmd.Stderr = q.banner
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan int, 1)
		go func() {
			err := cmd.Wait()
			q.done <- err
			exited <- 1
		}()
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		ready, gone := waitQuickstart(t, base, "http://127.0.0.1:"+strconv.Itoa(idpPort), exited)
		if ready {
			t.Cleanup(func() { q.stop(t) })
			return q
		}
		if !gone {
			q.stop(t)
			t.Fatalf("quickstart did not become ready:\n%s", q.banner.String())
		}
		if err := <-q.done; attempt == 3 {
			t.Fatalf("quickstart exited (%v) three times:\n%s", err, q.banner.String())
		}
	}
}

// stop interrupts quickstart (Ctrl-C) and expects a clean exit.
func (q *quickstartProcess) stop(t *testing.T) {
	if err := q.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("interrupt quickstart: %v", err)
	}
	select {
	case err := <-q.done:
		if err != nil {
			t.Errorf("quickstart exited: %v\n%s", err, q.banner.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("quickstart did not stop after Ctrl-C; killed")
		_ = q.cmd.Process.Kill()
		t.Logf("quickstart killed: %v", <-q.done)
	}
}

// bannerLine returns the banner's line that starts with prefix (leading
// spaces ignored), or fails the test.
func bannerLine(t *testing.T, banner, prefix string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(banner))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("the banner has no line starting with %q:\n%s", prefix, banner)
	return ""
}

// runBash runs script with bash -e (stop at the first failing command)
// and returns its exit code, stdout and stderr.
func runBash(t *testing.T, bash, script string, env []string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bash, "-e", "-c", script)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatalf("bash: %v", err)
	}
	return 0, out.String(), errb.String()
}

// TestFirstHourDeploymentValidation is the checklist's Deployment
// Validation run verbatim, as a newcomer would after the README: the nmp
// binary is built, nmp quickstart started, the two export lines its banner
// prints pasted into bash, then each of the checklist's three checks run
// as the checklist writes them (the sign-in through the documented
// NMP_OIDC_USERNAME/NMP_OIDC_PASSWORD, as a script would). Without the
// BASE_URL line the curl checks ask no server; without the PATH line
// "nmp" is not found.
func TestFirstHourDeploymentValidation(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Missing(t, "bash", "not on PATH")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Missing(t, "curl", "not on PATH; the checklist's checks use it")
	}
	_, pyErr := exec.LookPath("python")
	bin := buildNMP(t)
	home := t.TempDir()
	// A clean environment: nothing of the caller's nmp configuration.
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	q := startQuickstartBinary(t, bin, env)
	banner := q.banner.String()

	// The banner's lines to paste, and the checklist's checks as written.
	exportBase := bannerLine(t, banner, "export BASE_URL=")
	if want := "export BASE_URL=http://127.0.0.1:" + strconv.Itoa(q.port); exportBase != want {
		t.Fatalf("BASE_URL line %q, want %q", exportBase, want)
	}
	exportPath := bannerLine(t, banner, "export PATH=")
	if want := `export PATH="` + filepath.Dir(bin) + `:$PATH"`; exportPath != want {
		t.Fatalf("PATH line %q, want %q", exportPath, want)
	}
	for _, line := range strings.Split(seedValidation, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.Contains(banner, "  "+line) {
			t.Errorf("the banner does not show the check %q", line)
		}
	}

	var st struct {
		Users []struct{ Username, Password string }
	}
	data, err := os.ReadFile(filepath.Join(home, ".local", "share", "nmp", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &st); err != nil || len(st.Users) < 2 || st.Users[1].Username != "alice" {
		t.Fatalf("users file: %v %+v", err, st)
	}
	alice := st.Users[1]

	checks := strings.Split(seedValidation, "\n\n")
	if len(checks) != 3 {
		t.Fatalf("%d checks", len(checks))
	}
	pasted := exportBase + "\n" + exportPath + "\n"
	loginEnv := append(append([]string{}, env...), "NMP_OIDC_USERNAME="+alice.Username, "NMP_OIDC_PASSWORD="+alice.Password)
	tests := []struct {
		name  string
		check string
		env   []string
		want  *regexp.Regexp // on stdout
	}{
		{"1 auth enabled", checks[0], env, regexp.MustCompile(`(?m)^\s*"auth_enabled": true,?$`)},
		{"2 anonymous is 401", checks[1], env, regexp.MustCompile(`^401$`)},
		{"3 sign in and list", checks[2], loginEnv, regexp.MustCompile(`(?m)^default\b`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.check, "python") && pyErr != nil {
				testenv.Missing(t, "python", "the checklist runs \"python -m json.tool\"; on Debian install python-is-python3")
			}
			code, out, errOut := runBash(t, bash, pasted+tc.check, tc.env)
			if strings.Contains(out+errOut, alice.Password) {
				t.Fatal("the password reached the output")
			}
			if code != 0 || !tc.want.MatchString(out) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant stdout matching %s", code, out, errOut, tc.want)
			}
		})
	}
	// The nmp the checks ran is the one just built, found through the
	// pasted PATH line.
	if code, out, _ := runBash(t, bash, pasted+"command -v nmp", env); code != 0 || strings.TrimSpace(out) != bin {
		t.Fatalf("command -v nmp: %d %q, want %s", code, out, bin)
	}
}
