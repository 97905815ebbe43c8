package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/testenv"
)

// devIDPOutput is a stderr that the test reads while the command runs.
type devIDPOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *devIDPOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *devIDPOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func devIDPEnviron(t *testing.T, extra ...string) ([]string, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	return append([]string{"HOME=" + dir, "NMP_DATA_DIR=" + data}, extra...), data
}

func TestDevIDPRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"all IPv4 interfaces", []string{"--listen", "0.0.0.0:0"}, nil, "non-loopback"},
		{"all IPv6 interfaces", []string{"--listen", "[::]:0"}, nil, "non-loopback"},
		{"empty host", []string{"--listen", ":0"}, nil, "non-loopback"},
		{"host name", []string{"--listen", "idp.example.com:9400"}, nil, "non-loopback"},
		{"from the configuration", nil, []string{"NMP_DEV_IDP_LISTEN_ADDRESS=10.1.2.3:9400"}, "non-loopback"},
		{"flag wins over a broken config", []string{"--listen", "0.0.0.0:0"}, []string{"NMP_DEV_IDP_BOGUS=1"}, "non-loopback"},
		{"not host:port", []string{"--listen", "9400"}, nil, "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, data := devIDPEnviron(t, tt.env...)
			var stdout, stderr strings.Builder
			code := Run(context.Background(), append([]string{"dev-idp"}, tt.args...), strings.NewReader(""), &stdout, &stderr, env)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "--allow-non-loopback") && tt.want == "non-loopback" {
				t.Fatalf("stderr:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), devidp.Banner) {
				t.Fatal("the provider started")
			}
			if _, err := os.Stat(data); err == nil {
				t.Fatal("data directory created")
			}
		})
	}
}

var listeningLine = regexp.MustCompile(`msg="development identity provider listening" address=(\S+) issuer=(\S+)`)

func TestDevIDPServesUntilCancelled(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"loopback", []string{"--listen", "127.0.0.1:0"}},
		{"non-loopback when allowed", []string{"--listen", "0.0.0.0:0", "--allow-non-loopback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, data := devIDPEnviron(t)
			before := slog.Default()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stderr := &devIDPOutput{}
			done := make(chan int, 1)
			go func() {
				var stdout strings.Builder
				done <- Run(ctx, append([]string{"dev-idp"}, tt.args...), strings.NewReader(""), &stdout, stderr, env)
			}()

			var m []string
			for deadline := time.Now().Add(10 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
				select {
				case code := <-done:
					t.Fatalf("exited %d early; stderr:\n%s", code, stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("not listening; stderr:\n%s", stderr.String())
				}
				m = listeningLine.FindStringSubmatch(stderr.String())
			}
			_, port, _ := net.SplitHostPort(m[1])
			resp, err := http.Get("http://127.0.0.1:" + port + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&doc)
			testenv.Close(t, resp.Body)
			if doc["issuer"] != m[2] || !strings.HasSuffix(m[2], ":"+port) {
				t.Fatalf("discovery issuer %v, logged issuer %s", doc["issuer"], m[2])
			}

			cancel()
			select {
			case code := <-done:
				if code != ExitOK {
					t.Fatalf("exit %d after cancellation; stderr:\n%s", code, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no graceful shutdown")
			}
			out := stderr.String()
			for _, want := range []string{
				"*** " + devidp.Banner + " ***",          // printed
				`level=WARN msg="` + devidp.Banner + `"`, // logged
				`msg="development identity provider stopped"`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stderr lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(tt.name, "non-loopback") && !strings.Contains(out, "non-loopback address") {
				t.Errorf("no non-loopback warning:\n%s", out)
			}
			fi, err := os.Stat(filepath.Join(data, "dev-idp-signing-key.pem"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("signing key file: %v", err)
			}
			if slog.Default() != before {
				t.Fatal("slog default not restored")
			}
		})
	}
}
