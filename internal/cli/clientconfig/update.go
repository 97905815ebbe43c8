package clientconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"gopkg.in/yaml.v3"
)

// lockTimeout bounds the wait for another nmp process holding the lock.
const lockTimeout = 30 * time.Second

// Update changes the config file at path under an exclusive lock on
// "<path>.lock": it re-reads the file (a missing file is empty), calls fn,
// validates the result and atomically replaces the file with a 0600 file.
// Nothing is written when fn or the validation fails; fn's error is
// returned unchanged. The directory is created with mode 0700 if missing.
func Update(path string, fn func(*File) error) error {
	return UpdateContext(context.Background(), path, fn)
}

// UpdateContext is Update whose wait for the lock also ends when ctx
// does (the command was interrupted): it then returns an error matching
// ctx's, without writing.
func UpdateContext(ctx context.Context, path string, fn func(*File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	unlock, err := lock(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()

	// Write through a symlink (e.g. a dotfiles manager) rather than replace it.
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	data, err := os.ReadFile(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading config file: %w", err)
	}
	f, err := decode(path, data, time.Now())
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("refusing to write an invalid config: %w", err)
	}
	out, err := f.encode()
	if err != nil {
		return err
	}
	return writeAtomic(target, out)
}

func lock(parent context.Context, path string) (unlock func(), err error) {
	l := flock.New(path, flock.SetPermissions(0o600))
	ctx, cancel := context.WithTimeout(parent, lockTimeout)
	defer cancel()
	// TryLockContext returns an error whenever it did not get the lock.
	if _, err := l.TryLockContext(ctx, 20*time.Millisecond); err != nil {
		if perr := parent.Err(); perr != nil {
			return nil, fmt.Errorf("stopped waiting for the config lock %s (another nmp process holds it): %w", path, perr)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %s waiting for the config lock %s", lockTimeout, path)
		}
		return nil, fmt.Errorf("locking config file: %w", err)
	}
	return func() { _ = l.Unlock() }, nil
}

func (f *File) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return buf.Bytes(), nil
}

// writeAtomic writes data to a new 0600 file next to path, syncs it and
// renames it over path, so readers see the old or the new file, never a
// partial one.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the platform supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
