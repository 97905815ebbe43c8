package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	// ExitOK is success.
	ExitOK = 0
	// ExitLocal is a local error: config unreadable or invalid, not logged
	// in, file problems, cancelled.
	ExitLocal = 1
	// ExitUsage is a usage error: bad flags or arguments, missing workspace,
	// invalid combination.
	ExitUsage = 2
	// ExitRemote is a remote error: non-2xx response, network failure,
	// IdP/OAuth error.
	ExitRemote = 3
)

// ExitError is an error with the exit code it causes.
//
// Commands return ExitErrors (through UsageErrorf, LocalError, RemoteError)
// or errors of package client, which exit with ExitRemote. Any other error
// returned by a command's RunE exits with ExitLocal; an error cobra raises
// before RunE runs (unknown command or flag, wrong arguments, missing
// required flag) exits with ExitUsage.
type ExitError struct {
	Code int
	Err  error
	// Silent suppresses the "Error:" line: the command already said what
	// happened (e.g. "no" from auth can-i).
	Silent bool
}

// Error returns the message of the wrapped error.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *ExitError) Unwrap() error { return e.Err }

// UsageErrorf returns a usage error (exit code 2).
func UsageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// LocalError marks err as a local error (exit code 1); nil stays nil and an
// error that already has an exit code keeps it.
func LocalError(err error) error { return withCode(err, ExitLocal) }

// RemoteError marks err as a remote error (exit code 3), e.g. an IdP
// failure; nil stays nil and an error that already has an exit code keeps it.
func RemoteError(err error) error { return withCode(err, ExitRemote) }

func withCode(err error, code int) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}

// report prints err to w and returns its exit code. It is the one place
// that maps errors to exit codes and messages. started tells whether the
// command's RunE was reached; errors raised by cobra before are usage
// errors.
func report(w io.Writer, cmd *cobra.Command, err error, started bool) int {
	var (
		denied   *client.DeniedError
		apiErr   *client.APIError
		netErr   *client.NetworkError
		respErr  *client.ResponseError
		codedErr *ExitError
	)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "Error: cancelled")
		return ExitLocal
	case errors.As(err, &denied):
		fmt.Fprintf(w, "Error: %s (HTTP %d)\n", sanitizeLine(deniedMessage(denied)), denied.Status)
		return ExitRemote
	case errors.As(err, &apiErr):
		fmt.Fprintf(w, "Error: %s (HTTP %d)\n", sanitize(apiErr.Detail), apiErr.Status)
		if apiErr.Status == 401 {
			fmt.Fprintln(w, `Hint: run "nmp auth login"`)
		}
		return ExitRemote
	case errors.As(err, &netErr), errors.As(err, &respErr):
		fmt.Fprintf(w, "Error: %s\n", sanitize(err.Error()))
		return ExitRemote
	case errors.As(err, &codedErr) && codedErr.Silent:
		return codedErr.Code
	case errors.As(err, &codedErr):
		fmt.Fprintf(w, "Error: %s\n", sanitize(err.Error()))
		if codedErr.Code == ExitUsage {
			usageHint(w, cmd)
		}
		return codedErr.Code
	case !started:
		fmt.Fprintf(w, "Error: %s\n", sanitize(err.Error()))
		usageHint(w, cmd)
		return ExitUsage
	default:
		fmt.Fprintf(w, "Error: %s\n", sanitize(err.Error()))
		return ExitLocal
	}
}

// deniedMessage says, as kubectl does, who may not do what where:
// "forbidden: bob@example.com may not POST /apis/entities/v2/workspaces/
// default/members: permission workspaces.members.create missing in
// workspace "default"". Reasons without a permission or scope list keep
// the server's explanation.
func deniedMessage(d *client.DeniedError) string {
	who := cmp.Or(d.Email, d.Principal, "the caller")
	msg := "forbidden: " + who + " may not"
	if d.Method != "" {
		msg += " " + d.Method + " " + d.Path
	} else {
		msg += " send this request"
	}
	switch {
	case len(d.RequiredPermissions) > 0:
		msg += ": " + missingPermissions(d.RequiredPermissions, d.Workspace)
		if len(d.RequiredScopes) > 0 {
			msg += ", or the token has none of the scopes " + strings.Join(d.RequiredScopes, ", ")
		}
	case d.Reason == "scope_missing" && len(d.RequiredScopes) > 0:
		msg += ": the token has none of the scopes " + strings.Join(d.RequiredScopes, ", ")
	default:
		msg += ": " + cmp.Or(strings.TrimPrefix(d.Detail, "Forbidden: "), d.Reason) + " (" + d.Reason + ")"
	}
	return msg
}

// missingPermissions renders permissions grouped by the workspace each is
// checked in ("w/p" is p in w): `permission p missing in workspace "w"`.
func missingPermissions(perms []string, workspace string) string {
	groups := ident.PermissionsByWorkspace(perms, workspace)
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		noun := "permission"
		if len(g.Permissions) > 1 {
			noun = "permissions"
		}
		parts = append(parts, fmt.Sprintf("%s %s missing in workspace %q", noun, strings.Join(g.Permissions, ", "), g.Workspace))
	}
	return strings.Join(parts, " and ")
}

func usageHint(w io.Writer, cmd *cobra.Command) {
	if cmd != nil {
		fmt.Fprintf(w, "Run \"%s --help\" for usage.\n", cmd.CommandPath())
	}
}

// sanitize replaces control characters other than newlines (e.g. terminal
// escape sequences in a server message) with spaces, so that output cannot
// drive the terminal.
func sanitize(s string) string { return replaceControls(s, true) }

// sanitizeLine is sanitize for one line: newlines become spaces too.
func sanitizeLine(s string) string { return replaceControls(s, false) }

func replaceControls(s string, keepNewlines bool) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' && keepNewlines {
			return r
		}
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
