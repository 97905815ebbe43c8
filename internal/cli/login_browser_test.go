package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/testenv"
)

const (
	chromiumPath     = "/usr/bin/chromium"
	chromeDriverPath = "/usr/bin/chromedriver"
	// webElementKey is the W3C WebDriver element reference key.
	webElementKey = "element-6066-11e4-a52e-4f735466cecf"
)

// webDriver is a ChromeDriver session driven over the W3C WebDriver HTTP
// API with plain net/http.
type webDriver struct {
	t    *testing.T
	base string // http://127.0.0.1:<port>/session/<id>
	http *http.Client
}

// call sends a WebDriver command and decodes its "value" into out.
func (w *webDriver) call(method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	defer testenv.Close(w.t, resp.Body)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %.300s", method, url, resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return err
	}
	return json.Unmarshal(env.Value, out)
}

// startWebDriver starts chromedriver on a free loopback port and opens a
// headless Chromium session; both end at test cleanup.
func startWebDriver(t *testing.T) *webDriver {
	t.Helper()
	for _, p := range []string{chromiumPath, chromeDriverPath} {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, "Chromium and ChromeDriver", fmt.Sprintf("%s: %v; install the Debian packages chromium and chromium-driver", p, err))
		}
	}
	port := freePort(t)
	cmd := exec.Command(chromeDriverPath, fmt.Sprintf("--port=%d", port), "--allowed-ips=127.0.0.1")
	var logs testenv.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	w := &webDriver{t: t, http: &http.Client{Timeout: 60 * time.Second}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := w.call("GET", root+"/status", nil, &status); err == nil && status.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not become ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
				"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
				"--user-data-dir=" + t.TempDir(), "--remote-debugging-port=0"},
		},
	}}}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := w.call("POST", root+"/session", caps, &sess); err != nil || sess.SessionID == "" {
		t.Fatalf("new session: %v\n%s", err, logs.String())
	}
	w.base = root + "/session/" + sess.SessionID
	t.Cleanup(func() { _ = w.call("DELETE", w.base, nil, nil) })
	return w
}

func (w *webDriver) navigate(url string) error {
	return w.call("POST", w.base+"/url", map[string]string{"url": url}, nil)
}

// find waits for an element matching the CSS selector.
func (w *webDriver) find(css string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var el map[string]string
		err := w.call("POST", w.base+"/element", map[string]string{"using": "css selector", "value": css}, &el)
		if err == nil && el[webElementKey] != "" {
			return el[webElementKey], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no element %q: %v", css, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *webDriver) typeInto(css, text string) error {
	id, err := w.find(css)
	if err != nil {
		return err
	}
	return w.call("POST", w.base+"/element/"+id+"/value", map[string]string{"text": text}, nil)
}

func (w *webDriver) click(css string) error {
	id, err := w.find(css)
	if err != nil {
		return err
	}
	return w.call("POST", w.base+"/element/"+id+"/click", map[string]any{}, nil)
}

// waitText waits until the page's text contains s and returns the text.
func (w *webDriver) waitText(s string) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		id, err := w.find("body")
		if err == nil && w.call("GET", w.base+"/element/"+id+"/text", nil, &text) == nil && strings.Contains(text, s) {
			return text, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var url string
	_ = w.call("GET", w.base+"/url", nil, &url)
	return text, fmt.Errorf("page %s never showed %q; it shows:\n%s", url, s, text)
}

// TestRealBrowserLogin: headless Chromium, driven through ChromeDriver,
// opens the URL nmp auth login --browser hands it, signs in on the
// development IdP's page and is redirected to the CLI's loopback callback,
// which tells it to close the window. The saved token then works against
// the server.
func TestRealBrowserLogin(t *testing.T) {
	t.Parallel()
	wd := startWebDriver(t)
	st := startAuthStack(t, stackOptions{})
	r := newRunner(t, "NMP_BASE_URL="+st.srv.URL)
	done := make(chan error, 1)
	var pageText string
	ctx := cli.WithBrowserOpener(context.Background(), func(_ context.Context, u string) error {
		go func() {
			done <- func() error {
				if err := wd.navigate(u); err != nil {
					return err
				}
				if _, err := wd.waitText("Sign in"); err != nil {
					return err
				}
				if err := wd.typeInto(`input[name="username"]`, "alice"); err != nil {
					return err
				}
				if err := wd.typeInto(`input[name="password"]`, alicePassword); err != nil {
					return err
				}
				if err := wd.click(`button[type="submit"]`); err != nil {
					return err
				}
				text, err := wd.waitText("you can close this window")
				pageText = text
				return err
			}()
		}()
		return nil
	})
	res := r.runWith(ctx, nil, "auth", "login", "--browser")
	var browserErr error
	select {
	case browserErr = <-done:
	case <-time.After(30 * time.Second):
		browserErr = fmt.Errorf("the browser never finished")
	}
	if browserErr != nil {
		t.Fatalf("browser: %v\nCLI exit %d:\n%s", browserErr, res.code, res.stderr)
	}
	if res.code != 0 || !strings.Contains(res.stderr, "Logged in as alice@example.com (context default)") {
		t.Fatalf("login: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(pageText, "Logged in") {
		t.Errorf("callback page text: %q", pageText)
	}
	r.ok("workspaces", "list")
	r.ok("members", "list", "--workspace", "default")
}
