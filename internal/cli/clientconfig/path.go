package clientconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Path returns the config file path: $NMP_CONFIG_FILE, which must exist;
// else $XDG_CONFIG_HOME/nmp/config.yaml when the directory
// $XDG_CONFIG_HOME/nmp exists; else ~/.config/nmp/config.yaml. getenv looks
// up environment variables.
func Path(getenv func(string) string) (string, error) {
	if p := getenv(EnvConfigFile); p != "" {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%s=%s: file does not exist", EnvConfigFile, p)
		case err != nil:
			return "", fmt.Errorf("%s: %w", EnvConfigFile, err)
		case info.IsDir():
			return "", fmt.Errorf("%s=%s: is a directory", EnvConfigFile, p)
		}
		return p, nil
	}
	// Per the XDG spec a relative XDG_CONFIG_HOME is ignored.
	if xdg := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(xdg) {
		dir := filepath.Join(xdg, "nmp")
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			return filepath.Join(dir, "config.yaml"), nil
		}
	}
	home := getenv("HOME")
	if home == "" {
		home = getenv("USERPROFILE")
	}
	if home == "" {
		return "", fmt.Errorf("cannot find the home directory: set HOME or %s", EnvConfigFile)
	}
	return filepath.Join(home, ".config", "nmp", "config.yaml"), nil
}
