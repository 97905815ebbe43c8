package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/testenv"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, ln)
	return ln.Addr().(*net.TCPAddr).Port
}

// waitQuickstart waits until the quickstart at base is ready and its
// discovery names issuer (so the answer is from this quickstart, not from
// another test's server on a reused port); exited reports that quickstart
// returned instead.
func waitQuickstart(t *testing.T, base, issuer string, done <-chan int) (ready, exited bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false, true
		default:
		}
		if resp, err := http.Get(base + "/apis/auth/discovery"); err == nil {
			var d struct {
				OIDC struct {
					Issuer string `json:"issuer"`
				} `json:"oidc"`
			}
			err := json.NewDecoder(resp.Body).Decode(&d)
			testenv.Close(t, resp.Body)
			if err == nil && d.OIDC.Issuer == issuer {
				if r, err := http.Get(base + "/health/ready"); err == nil {
					testenv.Close(t, r.Body)
					if r.StatusCode == 200 {
						return true, false
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false, false
}

// TestQuickstart runs nmp quickstart and checks the seed's validation
// against it: discovery says auth is on, anonymous and spoofed requests are
// 401, a user of the generated file signs in at the dev IdP and lists
// workspaces with the token.
func TestQuickstart(t *testing.T) {
	home := t.TempDir()
	dataDir := filepath.Join(home, "data")
	env := []string{"HOME=" + home, "NMP_DATA_DIR=" + dataDir}
	// quickstart writes to stderr from its own goroutines (the banner, the
	// server's logs) while the test reads it: a synchronized buffer.
	var stderr *testenv.Buffer
	// freePort releases the port before quickstart binds it, so another
	// test may take it in between: a quickstart that exits at once is
	// started again on other ports, and only an answer naming this
	// quickstart's IdP counts as ready.
	var (
		ctx    context.Context
		cancel context.CancelFunc
		done   chan int
		base   string
	)
	for attempt := 1; ; attempt++ {
		port, idpPort := freePort(t), freePort(t)
		ctx, cancel = context.WithCancel(context.Background())
		stderr = &testenv.Buffer{}
		done = make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"quickstart", "--port", strconv.Itoa(port), "--idp-port", strconv.Itoa(idpPort)},
				strings.NewReader(""), &bytes.Buffer{}, stderr, env)
		}()
		base = "http://127.0.0.1:" + strconv.Itoa(port)
		if ready, exited := waitQuickstart(t, base, "http://127.0.0.1:"+strconv.Itoa(idpPort), done); ready {
			break
		} else if !exited || attempt == 3 {
			cancel()
			t.Fatalf("quickstart did not become ready (attempt %d):\n%s", attempt, stderr.String())
		}
		cancel()
	}

	// The users file: three users, owner-only.
	usersFile := filepath.Join(dataDir, "quickstart.yaml")
	fi, err := os.Stat(usersFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", fi, err)
	}
	var st struct {
		Users []struct{ Username, Email, Password string }
	}
	b, _ := os.ReadFile(usersFile)
	if err := yaml.Unmarshal(b, &st); err != nil || len(st.Users) != 3 || len(st.Users[1].Password) < 16 {
		t.Fatalf("users: %+v %v", st, err)
	}
	for _, u := range st.Users {
		if strings.Contains(stderr.String(), u.Password) {
			t.Fatal("a password reached the command output")
		}
	}
	// The quickstart context is written and active.
	var out bytes.Buffer
	if code := cli.Run(context.Background(), []string{"config", "current-context"}, strings.NewReader(""), &out, &bytes.Buffer{}, env); code != 0 || strings.TrimSpace(out.String()) != "quickstart" {
		t.Fatalf("current context: %d %q", code, out.String())
	}

	// Deployment validation 1 and 2, and header spoofing.
	var disc map[string]any
	resp, err := http.Get(base + "/apis/auth/discovery")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	testenv.Close(t, resp.Body)
	oidc, _ := disc["oidc"].(map[string]any)
	if disc["auth_enabled"] != true || oidc == nil || oidc["token_endpoint"] == nil {
		t.Fatalf("discovery %v", disc)
	}
	for _, hdr := range []map[string]string{{}, {"X-NMP-Principal-Id": "admin@example.com"}} {
		req, _ := http.NewRequest("GET", base+"/v2/workspaces", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("%v: %v %v", hdr, resp, err)
		}
		testenv.Close(t, resp.Body)
	}

	// alice signs in at the dev IdP (password grant) and lists workspaces.
	oc := &oauth2.Config{ClientID: "nmp-cli", Endpoint: oauth2.Endpoint{TokenURL: oidc["token_endpoint"].(string),
		AuthStyle: oauth2.AuthStyleInParams}, Scopes: strings.Fields(oidc["default_scopes"].(string))}
	tok, err := oc.PasswordCredentialsToken(context.Background(), st.Users[1].Username, st.Users[1].Password)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	req, _ := http.NewRequest("GET", base+"/v2/workspaces", nil)
	tok.SetAuthHeader(req)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("authenticated list: %v %v", resp, err)
	}
	testenv.Close(t, resp.Body)

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("quickstart exited %d\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("quickstart did not stop")
	}
	if !strings.Contains(stderr.String(), "DEVELOPMENT IDENTITY PROVIDER - NOT FOR PRODUCTION USE") {
		t.Fatal("no banner")
	}
}
