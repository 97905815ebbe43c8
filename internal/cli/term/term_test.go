package term

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/nmp-project/nmp/internal/testenv"
)

func TestNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, r)
	defer testenv.Close(t, w)
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, file)
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
