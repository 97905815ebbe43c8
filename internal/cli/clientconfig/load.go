package clientconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path. A missing file is an empty config.
// When the file is accessible by group or others, a warning goes to warn
// (the next Update fixes the mode). Legacy api-key users are migrated in
// memory; the migration is saved by the next Update. The file is invalid
// when names repeat or a reference dangles.
func Load(path string, warn io.Writer) (*File, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	data, err := readConfigFile(file, path, warn)
	if err := errors.Join(err, file.Close()); err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return decode(path, data, time.Now())
}

// readConfigFile reads the open config file, warning when group or
// others can access it.
func readConfigFile(file *os.File, path string, warn io.Writer) ([]byte, error) {
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && warn != nil {
		fmt.Fprintf(warn, "Warning: config file %s is accessible by group or others (mode %04o); it will be restricted to 0600 on the next write\n", path, perm)
	}
	return io.ReadAll(file)
}

// decode parses, migrates and validates the file contents.
func decode(path string, data []byte, now time.Time) (*File, error) {
	f := &File{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, f); err != nil {
			return nil, fmt.Errorf("config file %s is not valid: %w", path, err)
		}
	}
	if err := migrateLegacyUsers(f, now); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("config file %s is not valid: %w", path, err)
	}
	return f, nil
}

// Validate checks that names are non-empty and unique, that every reference
// (current context, context cluster and user) exists, and that base URLs
// and output formats are well-formed.
func (f *File) Validate() error {
	var errs []error
	clusters := map[string]bool{}
	for _, c := range f.Clusters {
		errs = append(errs, checkName("cluster", c.Name, clusters))
		if c.BaseURL != "" {
			errs = append(errs, ValidateBaseURL(c.BaseURL))
		}
		if _, err := c.CAData(); err != nil {
			errs = append(errs, err)
		}
	}
	users := map[string]bool{}
	for _, u := range f.Users {
		errs = append(errs, checkName("user", u.Name, users))
	}
	contexts := map[string]bool{}
	for _, c := range f.Contexts {
		errs = append(errs, checkName("context", c.Name, contexts))
		if !clusters[c.Cluster] {
			errs = append(errs, fmt.Errorf("context %q references unknown cluster %q", c.Name, c.Cluster))
		}
		if !users[c.User] {
			errs = append(errs, fmt.Errorf("context %q references unknown user %q", c.Name, c.User))
		}
		if p := c.Preferences; p != nil && p.OutputFormat != "" && !ValidOutputFormat(p.OutputFormat) {
			errs = append(errs, fmt.Errorf("context %q has invalid output_format %q (want table, json or yaml)", c.Name, p.OutputFormat))
		}
	}
	if f.CurrentContext != "" && !contexts[f.CurrentContext] {
		errs = append(errs, fmt.Errorf("current_context references unknown context %q", f.CurrentContext))
	}
	return errors.Join(errs...)
}

func checkName(kind, name string, seen map[string]bool) error {
	if name == "" {
		return fmt.Errorf("a %s has no name", kind)
	}
	if seen[name] {
		return fmt.Errorf("%s name %q is not unique", kind, name)
	}
	seen[name] = true
	return nil
}

// ValidateBaseURL checks that u is an absolute http or https URL without
// query or fragment.
func ValidateBaseURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("invalid base URL %q: want http(s)://host[:port][/path]", u)
	}
	return nil
}
