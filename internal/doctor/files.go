package doctor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/hardening"
)

// decodeClaims returns the claims of a compact JWS, unverified: doctor
// reads the user's own token for its lifetime and scopes only.
func decodeClaims(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil || claims == nil {
		return nil, false
	}
	return claims, true
}

// numericClaim returns a NumericDate claim.
func numericClaim(claims map[string]any, name string) (time.Time, bool) {
	n, ok := claims[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// claimStrings returns a claim that is a string array or a
// space-separated string; nil when absent.
func claimStrings(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := []string{}
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// moreSyncFolders are sync clients clientconfig does not name (lower case,
// matched as whole directory names or name prefixes).
var moreSyncFolders = []string{"nextcloud", "owncloud", "pcloud drive", "seafile", "megasync", "box sync", "sync.com"}

// syncedFolder names the cloud-synced folder path lies in, "" if none.
func syncedFolder(path string) string {
	if f := clientconfig.CloudSyncedFolder(path); f != "" {
		return f
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for _, comp := range strings.Split(filepath.ToSlash(filepath.Dir(abs)), "/") {
		lc := strings.ToLower(comp)
		for _, s := range moreSyncFolders {
			if lc == s || (strings.HasPrefix(lc, s) && strings.ContainsRune(" -_(.", rune(lc[len(s)]))) {
				return comp
			}
		}
	}
	return ""
}

// gitWorkTree returns the top of the git work tree that holds dir ("" if
// none): a directory on the way up that has a .git entry.
func gitWorkTree(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func probeConfigFile(_ context.Context, e *env) ([]hardening.Finding, error) {
	path := e.ConfigPath
	if path == "" {
		return nil, errors.New("the config file's path is unknown")
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return finding(hardening.Info, fmt.Sprintf("There is no config file at %s: no token is stored.", path), ""), nil
	}
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	worst := hardening.Pass
	var details, fixes []string
	add := func(sev hardening.Severity, detail, fix string) {
		details = append(details, detail)
		fixes = append(fixes, fix)
		if sev.Rank() > worst.Rank() {
			worst = sev
		}
	}
	if runtime.GOOS != "windows" {
		if m := info.Mode().Perm(); m&0o077 != 0 {
			add(hardening.Error, fmt.Sprintf("file mode %04o: other users can read the tokens it holds (want 0600)", m),
				"chmod 600 "+path)
		}
		if dinfo, err := os.Stat(dir); err == nil {
			if m := dinfo.Mode().Perm(); m&0o077 != 0 {
				sev := hardening.Warning
				if m&0o022 != 0 {
					sev = hardening.Error // others may replace the file
				}
				add(sev, fmt.Sprintf("directory %s mode %04o: want 0700", dir, m), "chmod 700 "+dir)
			}
		}
	}
	if folder := syncedFolder(path); folder != "" {
		add(hardening.Warning, fmt.Sprintf("in the cloud-synced folder %q: the tokens are copied to the sync service and your other devices", folder),
			fmt.Sprintf("Move it to a local directory (set %s or XDG_CONFIG_HOME)", clientconfig.EnvConfigFile))
	}
	if top := gitWorkTree(dir); top != "" {
		add(hardening.Warning, fmt.Sprintf("inside the git work tree %s: a commit could publish the tokens", top),
			fmt.Sprintf("Move it out of the work tree (set %s or XDG_CONFIG_HOME)", clientconfig.EnvConfigFile))
	}
	if worst == hardening.Pass {
		modes := "private (0600, directory 0700)"
		if runtime.GOOS == "windows" {
			modes = "not checked for permissions (Windows)"
		}
		return finding(hardening.Pass, fmt.Sprintf("%s is %s, local and outside any git work tree.", path, modes), ""), nil
	}
	return finding(worst, fmt.Sprintf("The config file %s, which holds your tokens: %s.", path, strings.Join(details, "; ")),
		strings.Join(fixes, "; "), details...), nil
}
