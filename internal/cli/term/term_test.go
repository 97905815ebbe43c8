package term

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name string
		f    *os.File
	}{
		{"pipe", r},
		{"regular file", file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if IsTerminal(tt.f) {
				t.Error("IsTerminal = true")
			}
			if _, err := ReadPassword(context.Background(), tt.f); err == nil {
				t.Error("ReadPassword succeeded on a non-terminal")
			}
		})
	}
}
