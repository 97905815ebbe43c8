package cli

import (
	"strings"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// newMembersCommand returns the members group. It is mounted twice, as
// "nmp workspaces members" and as the compatibility group "nmp members".
func newMembersCommand(app *App) *cobra.Command {
	var workspace string
	cmd := newGroupCommand("members", "Manage the members of a workspace", "member")
	cmd.PersistentFlags().StringVarP(&workspace, "workspace", "w", "", "workspace (env NMP_WORKSPACE, else the context's workspace)")
	cmd.AddCommand(
		newMembersListCommand(app, &workspace),
		newMembersCreateCommand(app, &workspace),
		newMembersUpdateCommand(app, &workspace),
		newMembersDeleteCommand(app, &workspace),
	)
	return cmd
}

func newMembersListCommand(app *App, workspace *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the members of a workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := app.Workspace(*workspace)
			if err != nil {
				return err
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			members, err := c.ListMembers(cmd.Context(), ws)
			if err != nil {
				return err
			}
			if members == nil {
				members = []client.Member{}
			}
			return app.Render(members, memberTable(members...))
		},
	}
}

// memberTarget holds the flags of the principal-addressed member commands
// and resolves what they act on.
type memberTarget struct {
	workspace *string // the group's --workspace
	principal string
	roles     []string
	noWait    bool
}

func (t *memberTarget) register(cmd *cobra.Command, withRoles bool) {
	f := cmd.Flags()
	f.StringVar(&t.principal, "principal", "", "principal id, email, group or \"*\" (instead of the PRINCIPAL argument)")
	if withRoles {
		f.StringSliceVar(&t.roles, "roles", nil, "roles, repeatable and comma-separated (e.g. Viewer,Editor)")
		_ = cmd.MarkFlagRequired("roles")
	}
	f.BoolVar(&t.noWait, "no-wait", false, "do not wait for the role change to propagate")
}

// memberRequest is what a member write acts on.
type memberRequest struct {
	client               *client.Client
	workspace, principal string
	roles                []string
	opts                 client.WriteOptions
}

// resolve validates the arguments and flags (roles are required when
// withRoles) and returns the request to send.
func (t *memberTarget) resolve(app *App, args []string, withRoles bool) (*memberRequest, error) {
	principal, err := positionalOrFlag(args, t.principal, "principal")
	if err != nil {
		return nil, err
	}
	roles := normalizeRoles(t.roles)
	if withRoles && len(roles) == 0 {
		return nil, UsageErrorf("--roles needs at least one role")
	}
	ws, err := app.Workspace(*t.workspace)
	if err != nil {
		return nil, err
	}
	c, err := app.Client()
	if err != nil {
		return nil, err
	}
	return &memberRequest{c, ws, principal, roles, client.WriteOptions{NoWait: t.noWait}}, nil
}

func newMembersCreateCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "create [PRINCIPAL] --roles R...",
		Short: "Grant roles to a principal (\"*\" = everyone)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, true)
			if err != nil {
				return err
			}
			m, err := r.client.CreateMember(cmd.Context(), r.workspace, r.principal, r.roles, r.opts)
			if err != nil {
				return err
			}
			return app.Render(m, memberTable(*m))
		},
	}
	t.register(cmd, true)
	return cmd
}

func newMembersUpdateCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "update [PRINCIPAL] --roles R...",
		Short: "Replace the roles of a principal",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, true)
			if err != nil {
				return err
			}
			m, err := r.client.UpdateMember(cmd.Context(), r.workspace, r.principal, r.roles, r.opts)
			if err != nil {
				return err
			}
			return app.Render(m, memberTable(*m))
		},
	}
	t.register(cmd, true)
	return cmd
}

func newMembersDeleteCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "delete [PRINCIPAL]",
		Short: "Revoke every role of a principal (no prompt)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, false)
			if err != nil {
				return err
			}
			resp, err := r.client.DeleteMember(cmd.Context(), r.workspace, r.principal, r.opts)
			if err != nil {
				return err
			}
			return app.Render(resp, deleteTable(resp))
		},
	}
	t.register(cmd, false)
	return cmd
}

func memberTable(items ...client.Member) Table {
	t := Table{Header: []string{"PRINCIPAL", "ROLES", "GRANTED_AT", "GRANTED_BY"}}
	for _, m := range items {
		t.Rows = append(t.Rows, []string{m.Principal, strings.Join(m.Roles, ","), formatTime(m.GrantedAt), deref(m.GrantedBy)})
	}
	return t
}
