package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/server"
)

// quickstartUsers are the development users of nmp quickstart; admin is
// the seeded PlatformAdmin.
var quickstartUsers = []string{"admin", "alice", "bob"}

const (
	quickstartContext = "quickstart"
	quickstartScopes  = "openid profile email offline_access platform:read platform:write"
	quickstartFile    = "quickstart.yaml"
)

// quickstartUser is one entry of <data_dir>/quickstart.yaml.
type quickstartUser struct {
	Username string `yaml:"username"`
	Email    string `yaml:"email"`
	Password string `yaml:"password"`
}

type quickstartState struct {
	Users []quickstartUser `yaml:"users"`
}

func newQuickstartCommand(app *App) *cobra.Command {
	var port, idpPort int
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run the platform with auth and the development IdP in one process (" + devidp.Banner + ")",
		Long: "Start the development OIDC provider and the platform with authentication enabled,\n" +
			"OIDC pointing at it and seeding on. The users admin (PlatformAdmin), alice and bob get\n" +
			"random passwords on first run, kept in <data_dir>/quickstart.yaml (mode 0600). The\n" +
			"context \"quickstart\" is written to the client config and activated. For local use only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, warnings, err := config.Load(config.LoadOptions{Environ: app.Environ()})
			if err != nil {
				return configError(err)
			}
			state, path, err := loadQuickstartState(cfg.Platform.DataDir)
			if err != nil {
				return LocalError(err)
			}
			configureQuickstart(cfg, state, port, idpPort)
			if _, err := cfg.Validate(); err != nil {
				return configError(err)
			}
			log := server.NewLogger(app.Stderr, cfg.Service.LogLevel, cfg.Service.LogFormat)
			printDevIDPBanner(app.Stderr)
			for _, w := range warnings {
				log.Warn("configuration", "warning", w)
			}
			defer server.StartGCTuner(cfg, app.Environ(), log).Stop()
			defer useDefaultLogger(log)()
			idp, err := devidp.Start(cmd.Context(), cfg, cfg.DevIDP.ListenAddress, log)
			if err != nil {
				return LocalError(err)
			}
			cfg.Auth.OIDC.Issuer = idp.Issuer
			baseURL := "http://" + net.JoinHostPort(cfg.Service.Host, strconv.Itoa(cfg.Service.Port))
			cfg.Platform.BaseURL = baseURL
			srvErr := runQuickstartServer(cmd, app, cfg, log, baseURL, path)
			return LocalError(errors.Join(srvErr, idp.Wait()))
		},
	}
	cmd.Flags().IntVar(&port, "port", 8080, "platform port (on 127.0.0.1)")
	cmd.Flags().IntVar(&idpPort, "idp-port", 9400, "development IdP port (on 127.0.0.1)")
	return cmd
}

// configureQuickstart turns the loaded configuration into the quickstart
// one: auth on, OIDC against the dev IdP, seeding on, loopback only.
func configureQuickstart(cfg *config.Config, state *quickstartState, port, idpPort int) {
	admin := "admin@example.com"
	cfg.Service.Host, cfg.Service.Port = "127.0.0.1", port
	cfg.Platform.SeedOnStartup = true
	cfg.Auth.Enabled = true
	cfg.Auth.AdminEmail = &admin
	cfg.Auth.OIDC.Enabled = true
	cfg.Auth.OIDC.ClientID = "nmp-cli"
	cfg.Auth.OIDC.DefaultScopes = quickstartScopes
	cfg.DevIDP.ListenAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(idpPort))
	cfg.DevIDP.Issuer = nil
	cfg.Auth.OIDC.Issuer = "http://" + cfg.DevIDP.ListenAddress
	cfg.DevIDP.Users = nil
	for _, u := range state.Users {
		cfg.DevIDP.Users = append(cfg.DevIDP.Users, config.DevIDPUser{Username: u.Username, Password: u.Password, Email: u.Email})
	}
}

func runQuickstartServer(cmd *cobra.Command, app *App, cfg *config.Config, log *slog.Logger, baseURL, usersFile string) error {
	srv, err := server.New(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", srv.Addr(), err), closeStore(srv))
	}
	if err := app.UpdateConfig(cmd.Context(), func(f *clientconfig.File) error {
		ctx, _ := f.EnsureContext(quickstartContext, baseURL)
		if cl := f.Cluster(ctx.Cluster); cl != nil {
			cl.BaseURL = baseURL
		}
		f.CurrentContext = quickstartContext
		return nil
	}); err != nil {
		return errors.Join(err, ln.Close(), closeStore(srv))
	}
	fmt.Fprint(app.Stderr, quickstartBanner(baseURL, cfg.Auth.OIDC.Issuer, usersFile, executableDir()))
	return srv.Serve(cmd.Context(), ln)
}

// quickstartBanner is what quickstart prints once it serves: where it
// runs, the two lines that make the platform's address (BASE_URL) and this
// nmp binary (PATH) available to the commands below in another terminal,
// how to sign in, and the production-hardening checklist's Deployment
// Validation, to paste as it is written there. binDir is the directory of
// the running binary ("" when unknown: no PATH line).
func quickstartBanner(baseURL, issuer, usersFile, binDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
nmp quickstart is running: platform %s, development IdP %s
The client context %q is active. Passwords are in %s (mode 0600).

In another terminal:

  export BASE_URL=%s
`, baseURL, issuer, quickstartContext, usersFile, baseURL)
	if binDir != "" {
		fmt.Fprintf(&b, "  export PATH=\"%s:$PATH\"\n", escapeDoubleQuoted(binDir))
	}
	b.WriteString(`
  nmp auth login                      # device code: open the printed URL and sign in as alice, bob or admin
  nmp auth login --username alice     # password grant; prompts for the password
  nmp workspaces list

Deployment validation (production-hardening checklist):

`)
	for _, line := range deploymentValidation {
		b.WriteString("  " + line + "\n")
	}
	b.WriteString("\nPress Ctrl-C to stop.\n")
	return b.String()
}

// deploymentValidation are the three checks of the production-hardening
// checklist's Deployment Validation, command for command as the checklist
// writes them, with the expected result as a comment.
var deploymentValidation = []string{
	`curl -s ${BASE_URL}/apis/auth/discovery | python -m json.tool      # "auth_enabled": true`,
	`curl -s -o /dev/null -w "%{http_code}" ${BASE_URL}/v2/workspaces   # 401`,
	`nmp auth login`,
	`nmp workspaces list                                                # success`,
}

// executableDir is the directory of the running binary when it is called
// nmp (so that the directory on PATH provides the nmp command), else "".
func executableDir() string {
	exe, err := os.Executable()
	if err != nil || strings.TrimSuffix(filepath.Base(exe), ".exe") != "nmp" {
		return ""
	}
	return filepath.Dir(exe)
}

// escapeDoubleQuoted escapes s for a POSIX shell's double quotes, inside
// which only \, ", $ and ` keep a special meaning.
func escapeDoubleQuoted(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '"', '$', '`':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// closeStore closes the store of a server that will not serve (Serve
// closes it otherwise).
func closeStore(srv *server.Server) error {
	if err := srv.Store().Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// loadQuickstartState reads <data_dir>/quickstart.yaml, creating it with
// random passwords (0600, in a 0700 data dir) on first run.
func loadQuickstartState(dataDir string) (*quickstartState, string, error) {
	path := filepath.Join(dataDir, quickstartFile)
	data, err := os.ReadFile(path)
	if err == nil {
		var st quickstartState
		if err := yaml.Unmarshal(data, &st); err != nil || len(st.Users) == 0 {
			return nil, path, fmt.Errorf("%s is not a valid quickstart users file; delete it to start over", path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, path, err
			}
		}
		return &st, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, err
	}
	st := &quickstartState{}
	for _, name := range quickstartUsers {
		pw, err := randomPassword(20)
		if err != nil {
			return nil, path, err
		}
		st.Users = append(st.Users, quickstartUser{Username: name, Email: name + "@example.com", Password: pw})
	}
	out, err := yaml.Marshal(st)
	if err != nil {
		return nil, path, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, path, err
	}
	out = append([]byte("# Users of nmp quickstart (development only). Keep this file private.\n"), out...)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, path, err
	}
	if _, err := f.Write(out); err != nil {
		return nil, path, errors.Join(err, f.Close())
	}
	return st, path, f.Close()
}

const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func randomPassword(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
		if err != nil {
			return "", err
		}
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b), nil
}
