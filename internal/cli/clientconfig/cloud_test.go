package clientconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCloudSyncedFolder(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
	}{
		{"local", "/home/me/.config/nmp/config.yaml", ""},
		{"Dropbox", "/home/me/Dropbox/nmp/config.yaml", "Dropbox"},
		{"Dropbox team", "/home/me/Dropbox (Acme)/config.yaml", "Dropbox (Acme)"},
		{"OneDrive", "/Users/me/OneDrive/config.yaml", "OneDrive"},
		{"OneDrive business", "/Users/me/OneDrive - Contoso/nmp/config.yaml", "OneDrive - Contoso"},
		{"iCloud Drive", "/Users/me/iCloud Drive/config.yaml", "iCloud Drive"},
		{"iCloud Mobile Documents", "/Users/me/Library/Mobile Documents/com~apple~CloudDocs/config.yaml", "Mobile Documents"},
		{"Google Drive", "/Users/me/Google Drive/config.yaml", "Google Drive"},
		{"GoogleDrive on macOS", "/Users/me/Library/CloudStorage/GoogleDrive-me@example.com/My Drive/config.yaml", "GoogleDrive-me@example.com"},
		{"My Drive", "/mnt/My Drive/config.yaml", "My Drive"},
		{"case-insensitive", "/home/me/dropbox/config.yaml", "dropbox"},
		{"file name does not count", "/home/me/Dropbox", ""},
		{"similar names do not count", "/home/me/Dropboxes/MyDriveway/onedrive2/config.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CloudSyncedFolder(tt.path); got != tt.want {
				t.Errorf("CloudSyncedFolder(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestCloudSyncedFolderThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	synced := filepath.Join(dir, "Dropbox", "dotfiles")
	if err := os.MkdirAll(synced, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "nmp")
	if err := os.Symlink(synced, link); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(link, "config.yaml")
	var w bytes.Buffer
	WarnCloudSynced(&w, path)
	if !strings.Contains(w.String(), `cloud-synced folder "Dropbox"`) {
		t.Errorf("warning = %q", w.String())
	}
	w.Reset()
	WarnCloudSynced(&w, filepath.Join(dir, "config.yaml"))
	if w.Len() != 0 {
		t.Errorf("local file warned: %q", w.String())
	}
}
