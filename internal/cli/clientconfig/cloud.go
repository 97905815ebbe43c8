package clientconfig

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// cloudFolders are directory names (lower case) of file-sync clients that
// copy files to a third-party service: Dropbox ("Dropbox", "Dropbox
// (Team)"), OneDrive ("OneDrive", "OneDrive - Contoso"), iCloud Drive
// ("iCloud Drive", macOS "Mobile Documents") and Google Drive ("Google
// Drive", macOS "GoogleDrive-<account>", "My Drive").
var cloudFolders = []string{"dropbox", "onedrive", "icloud drive", "mobile documents", "google drive", "googledrive", "my drive"}

// CloudSyncedFolder returns the name of the first directory of path, or
// of the path it resolves to through symbolic links, that belongs to a
// cloud-synced folder; "" if none does.
func CloudSyncedFolder(path string) string {
	candidates := []string{path}
	if abs, err := filepath.Abs(path); err == nil {
		candidates[0] = abs
	}
	// The file may not exist yet: resolve its directory.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(candidates[0])); err == nil {
		candidates = append(candidates, filepath.Join(dir, filepath.Base(path)))
	}
	if resolved, err := filepath.EvalSymlinks(candidates[0]); err == nil {
		candidates = append(candidates, resolved)
	}
	for _, p := range candidates {
		for _, comp := range strings.FieldsFunc(filepath.Dir(p), func(r rune) bool { return r == '/' || r == filepath.Separator }) {
			if isCloudFolder(comp) {
				return comp
			}
		}
	}
	return ""
}

func isCloudFolder(name string) bool {
	n := strings.ToLower(name)
	for _, c := range cloudFolders {
		if n == c {
			return true
		}
		if rest, ok := strings.CutPrefix(n, c); ok && rest != "" && strings.ContainsRune(" -_(.", rune(rest[0])) {
			return true
		}
	}
	return false
}

// WarnCloudSynced writes a warning to w when the config file at path lies
// in a cloud-synced folder, where the tokens it holds would be copied to
// a third party and to other devices.
func WarnCloudSynced(w io.Writer, path string) {
	if w == nil {
		return
	}
	if folder := CloudSyncedFolder(path); folder != "" {
		fmt.Fprintf(w, "Warning: config file %s is in the cloud-synced folder %q: the tokens it holds are copied to the sync service and your other devices; set %s to a local path\n",
			path, folder, EnvConfigFile)
	}
}
