package cli

import (
	"fmt"
	"strings"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// canIMethods are the HTTP methods that select the METHOD PATH form.
var canIMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// canIFlags are the flags of nmp auth can-i.
type canIFlags struct {
	workspace string
	as        string
	asEmail   string
	asGroups  []string
}

func newAuthCanICommand(app *App) *cobra.Command {
	var f canIFlags
	cmd := &cobra.Command{
		Use:   "can-i (METHOD PATH | PERMISSION... -w W) [--as PRINCIPAL]",
		Short: "Ask the server whether the current credential is allowed",
		Long: "Ask POST /apis/auth/v2/self-check whether the current credential may send a request\n" +
			"(METHOD PATH, e.g. \"can-i POST /v2/workspaces/ml-team/projects\") or holds permissions in a\n" +
			"workspace (e.g. \"can-i workspaces.update -w ml-team\"). Prints yes or no and the reason;\n" +
			"exits 0 for yes and 1 for no. A PlatformAdmin may ask for someone else with --as.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(app, cmd, args)
			if err != nil {
				return err
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			res, err := c.SelfCheck(cmd.Context(), *req)
			if err != nil {
				return err
			}
			answer := "no"
			if res.Allowed {
				answer = "yes"
			}
			if res.Reason != "" {
				answer += " (" + res.Reason + ")"
			}
			if err := app.Render(res, Table{Rows: [][]string{{answer}}}); err != nil {
				return err
			}
			if !res.Allowed {
				// Exit 1 like kubectl auth can-i; the answer is on stdout.
				return &ExitError{Code: ExitLocal, Err: fmt.Errorf("not allowed (%s)", res.Reason), Silent: true}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.workspace, "workspace", "w", "", "workspace of the PERMISSION form (env NMP_WORKSPACE, else the context's workspace)")
	fl.StringVar(&f.as, "as", "", "ask for this principal id instead of the current credential (PlatformAdmin only)")
	fl.StringVar(&f.asEmail, "as-email", "", "email of the --as principal")
	fl.StringSliceVar(&f.asGroups, "as-group", nil, "group of the --as principal; repeatable and comma-separated")
	return cmd
}

// request turns the arguments into a self-check request: an HTTP method
// followed by one /PATH is the request form, anything else a list of
// permission ids checked in the workspace.
func (f *canIFlags) request(app *App, cmd *cobra.Command, args []string) (*client.SelfCheckRequest, error) {
	req := &client.SelfCheckRequest{}
	if method := strings.ToUpper(args[0]); canIMethods[method] {
		if len(args) != 2 || !strings.HasPrefix(args[1], "/") {
			return nil, UsageErrorf("%s needs exactly one PATH starting with \"/\"", method)
		}
		if cmd.Flags().Changed("workspace") {
			return nil, UsageErrorf("--workspace applies to the PERMISSION form only")
		}
		req.Method, req.Path = method, args[1]
	} else {
		ws, err := app.Workspace(f.workspace)
		if err != nil {
			return nil, err
		}
		req.Workspace, req.Permissions = ws, args
	}
	groups := normalizeRoles(f.asGroups)
	switch {
	case f.as != "":
		req.As = &client.SelfCheckSubject{PrincipalID: f.as, Email: f.asEmail, Groups: groups}
	case f.asEmail != "" || len(groups) > 0:
		return nil, UsageErrorf("--as-email and --as-group need --as")
	}
	return req, nil
}
