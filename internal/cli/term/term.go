// Package term reads secrets from a terminal without echoing them.
package term

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strings"
)

// ErrNotSupported is returned where this platform cannot switch echo off.
var ErrNotSupported = errors.New("no-echo terminal input is not supported on this platform")

// ReadPassword reads one line from the terminal f with echo off and returns
// it without the line ending. The terminal state is restored before it
// returns, also when ctx is cancelled (e.g. by Ctrl-C).
func ReadPassword(ctx context.Context, f *os.File) (string, error) {
	restore, err := disableEcho(f)
	if err != nil {
		return "", err
	}
	defer restore()

	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && line != "" {
			err = nil // last line without a newline
		}
		done <- result{strings.TrimRight(line, "\r\n"), err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
