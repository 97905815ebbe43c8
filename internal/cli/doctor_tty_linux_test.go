package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/doctor"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal, or skips the test where none is available.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { _ = controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	return controller, tty
}

// TestDoctorOnTerminal: on a terminal the severities are coloured (not
// with NO_COLOR) and stderr shows a progress line that is cleared at the
// end.
func TestDoctorOnTerminal(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name    string
		noColor string
		colour  bool
	}{
		{"colour", "", true},
		{"NO_COLOR", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outC, outT := openPTY(t)
			errC, errT := openPTY(t)
			var wg sync.WaitGroup
			var stdout, stderr bytes.Buffer
			for _, p := range []struct {
				c   *os.File
				buf *bytes.Buffer
			}{{outC, &stdout}, {errC, &stderr}} {
				wg.Go(func() { _, _ = io.Copy(p.buf, p.c) }) // ends with EIO once the terminal side is closed
			}
			env := []string{"HOME=" + t.TempDir(), "NMP_BASE_URL=" + srv.URL}
			if tt.noColor != "" {
				env = append(env, "NO_COLOR="+tt.noColor)
			}
			code := cli.Run(context.Background(), []string{"doctor"}, strings.NewReader(""), outT, errT, env)
			_ = outT.Close()
			_ = errT.Close()
			wg.Wait()
			if code != 1 {
				t.Fatalf("exit %d (auth disabled is an error)\n%s\n%s", code, stdout.String(), stderr.String())
			}
			if got := strings.Contains(stdout.String(), "\033[1;31mERROR"); got != tt.colour {
				t.Fatalf("coloured %v, want %v: %q", got, tt.colour, stdout.String())
			}
			if !tt.colour && strings.Contains(stdout.String(), "\033[") {
				t.Fatalf("escape sequences with NO_COLOR: %q", stdout.String())
			}
			e := stderr.String()
			if !strings.Contains(e, fmt.Sprintf("Checking the deployment… %d/%d", len(doctor.IDs()), len(doctor.IDs()))) || !strings.HasSuffix(e, "\r\033[K") {
				t.Fatalf("progress line: %q", e)
			}
		})
	}
}
