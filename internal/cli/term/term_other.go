//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package term

import "os"

// IsTerminal reports whether f is a terminal; always false on this platform.
func IsTerminal(*os.File) bool { return false }

func disableEcho(*os.File) (func(), error) { return nil, ErrNotSupported }
