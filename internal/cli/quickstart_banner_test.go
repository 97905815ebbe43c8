package cli

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/testenv"
)

// TestQuickstartBannerPathLine: the PATH line of the banner, pasted into
// bash, puts exactly the binary's directory in front of PATH, whatever
// characters the directory name holds (spaces, quotes, $, backquotes,
// backslashes are not expanded or lost).
func TestQuickstartBannerPathLine(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Missing(t, "bash", "not on PATH")
	}
	tests := []struct{ name, dir string }{
		{"plain", "/opt/nmp/bin"},
		{"space", "/home/a user/nmp bin"},
		{"dollar", "/tmp/$HOME/${PATH}"},
		{"quotes", `/tmp/it's "here"`},
		{"backquote", "/tmp/`touch pwned`"},
		{"backslash", `/tmp/a\b\\c\`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			banner := quickstartBanner("http://127.0.0.1:8080", "http://127.0.0.1:9400", "/x/quickstart.yaml", tc.dir)
			var line string
			for _, l := range strings.Split(banner, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "export PATH=") {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no PATH line:\n%s", banner)
			}
			cmd := exec.Command(bash, "-c", line+"\nprintf %s \"$PATH\"")
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
			out, err := cmd.Output()
			if err != nil || string(out) != tc.dir+":/usr/bin:/bin" {
				t.Fatalf("%s\n-> %q %v, want %q", line, out, err, tc.dir+":/usr/bin:/bin")
			}
		})
	}
	// Without a known binary directory there is no PATH line to paste.
	if b := quickstartBanner("http://127.0.0.1:8080", "http://127.0.0.1:9400", "/x", ""); strings.Contains(b, "export PATH") {
		t.Fatalf("PATH line without a directory:\n%s", b)
	}
}
