package cli

import (
	"errors"
	"net/http"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

func newWorkspacesCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("workspaces", "Manage workspaces", "workspace")
	cmd.AddCommand(
		newWorkspacesListCommand(app),
		newWorkspacesCreateCommand(app),
		newWorkspacesGetCommand(app),
		newWorkspacesUpdateCommand(app),
		newWorkspacesDeleteCommand(app),
		newMembersCommand(app),
	)
	return cmd
}

func newWorkspacesListCommand(app *App) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the workspaces you can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := lf.options(cmd)
			if err != nil {
				return err
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			items, p, err := fetchPages(opts, lf.allPages, func(o client.ListOptions) (*client.Page[client.Workspace], error) {
				return c.ListWorkspaces(cmd.Context(), o)
			})
			if err != nil {
				return err
			}
			if err := app.Render(items, workspaceTable(items...)); err != nil {
				return err
			}
			app.morePagesNote(p)
			return nil
		},
	}
	lf.register(cmd)
	return cmd
}

func newWorkspacesCreateCommand(app *App) *cobra.Command {
	var (
		name, description string
		existOK, noWait   bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a workspace (you become its Admin)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := positionalOrFlag(args, name, "name")
			if err != nil {
				return err
			}
			req := client.CreateWorkspaceRequest{Name: name}
			if cmd.Flags().Changed("description") {
				req.Description = &description
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			ws, err := c.CreateWorkspace(cmd.Context(), req, client.WriteOptions{NoWait: noWait})
			if existOK && isStatus(err, http.StatusConflict) {
				ws, err = c.GetWorkspace(cmd.Context(), name)
			}
			if err != nil {
				return err
			}
			return app.Render(ws, workspaceTable(*ws))
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "workspace name (instead of the NAME argument)")
	f.StringVar(&description, "description", "", "description")
	f.BoolVar(&existOK, "exist-ok", false, "if the workspace exists, show it and succeed")
	f.BoolVar(&noWait, "no-wait", false, "do not wait for the creator's Admin role to propagate")
	return cmd
}

func newWorkspacesGetCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			ws, err := c.GetWorkspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.Render(ws, workspaceTable(*ws))
		},
	}
}

func newWorkspacesUpdateCommand(app *App) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "update NAME --description D",
		Short: "Change a workspace's description",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			ws, err := c.UpdateWorkspace(cmd.Context(), args[0], description)
			if err != nil {
				return err
			}
			return app.Render(ws, workspaceTable(*ws))
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "new description")
	_ = cmd.MarkFlagRequired("description")
	return cmd
}

func newWorkspacesDeleteCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an empty workspace and revoke its role bindings (no prompt)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			resp, err := c.DeleteWorkspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.Render(resp, deleteTable(resp))
		},
	}
}

func workspaceTable(items ...client.Workspace) Table {
	t := Table{Header: []string{"NAME", "DESCRIPTION", "CREATED_AT", "CREATED_BY"}}
	for _, w := range items {
		t.Rows = append(t.Rows, []string{w.Name, deref(w.Description), formatTime(w.CreatedAt), deref(w.CreatedBy)})
	}
	return t
}

func deleteTable(r *client.DeleteResponse) Table {
	return Table{
		Header: []string{"MESSAGE", "ID", "DELETED_AT"},
		Rows:   [][]string{{r.Message, r.ID, formatTime(r.DeletedAt)}},
	}
}

// isStatus reports whether err is an API error with the given status.
func isStatus(err error, status int) bool {
	apiErr, ok := errors.AsType[*client.APIError](err)
	return ok && apiErr.Status == status
}
