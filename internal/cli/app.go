package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/cli/term"
	"github.com/nmp-project/nmp/internal/client"
)

// GlobalFlags are the values of the flags accepted by every command.
type GlobalFlags struct {
	BaseURL       string
	Context       string
	OutputFormat  string
	NoAutoRefresh bool
	Verbose       bool
	// InsecureHTTP allows an http:// base URL whose host is not loopback.
	InsecureHTTP bool
	// Version is declared for help and parsing; Run handles --version
	// before cobra so that it works with any command.
	Version bool
}

// App is what a command runs with: streams, environment variables and the
// global flags. Commands read the environment only through Getenv and get
// the config file, the effective settings and an API client from the App.
// An App serves one command invocation.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Global holds the global flags once cobra has parsed them.
	Global GlobalFlags

	env      map[string]string
	config   *clientconfig.File
	settings *clientconfig.Settings
}

// NewApp returns an App with the given streams and environment
// ("KEY=value" entries, as from os.Environ).
func NewApp(stdin io.Reader, stdout, stderr io.Writer, environ []string) *App {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, env: env}
}

// Environ returns the environment as "KEY=value" entries.
func (a *App) Environ() []string {
	out := make([]string, 0, len(a.env))
	for k, v := range a.env {
		out = append(out, k+"="+v)
	}
	return out
}

// Getenv returns the environment variable key, "" if unset.
func (a *App) Getenv(key string) string { return a.env[key] }

// ConfigPath returns the client config file path.
func (a *App) ConfigPath() (string, error) {
	p, err := clientconfig.Path(a.Getenv)
	return p, LocalError(err)
}

// Config loads the client config file once per App; a missing file is an
// empty config.
func (a *App) Config() (*clientconfig.File, error) {
	if a.config != nil {
		return a.config, nil
	}
	path, err := a.ConfigPath()
	if err != nil {
		return nil, err
	}
	f, err := clientconfig.Load(path, a.Stderr)
	if err != nil {
		return nil, LocalError(err)
	}
	a.config = f
	return f, nil
}

// UpdateConfig changes the client config file with clientconfig.Update.
// Errors from fn keep their exit code; other failures are local errors.
// Waiting for another nmp process's lock ends with ctx (Ctrl-C).
func (a *App) UpdateConfig(ctx context.Context, fn func(*clientconfig.File) error) error {
	path, err := a.ConfigPath()
	if err != nil {
		return err
	}
	a.config, a.settings = nil, nil
	if err := clientconfig.UpdateContext(ctx, path, fn); err != nil {
		return LocalError(err)
	}
	clientconfig.WarnCloudSynced(a.Stderr, path)
	return nil
}

// Settings returns the effective settings (flags > environment > context >
// defaults). An invalid base URL or output format, which can only come
// from a flag or the environment, is a usage error.
func (a *App) Settings() (*clientconfig.Settings, error) {
	if a.settings != nil {
		return a.settings, nil
	}
	f, err := a.Config()
	if err != nil {
		return nil, err
	}
	s, err := f.Resolve(clientconfig.Overrides{
		Context:      a.Global.Context,
		BaseURL:      a.Global.BaseURL,
		OutputFormat: a.Global.OutputFormat,
	}, a.Getenv)
	if err != nil {
		return nil, LocalError(err)
	}
	if !clientconfig.ValidOutputFormat(s.OutputFormat) {
		return nil, UsageErrorf("invalid output format %q: want table, json or yaml", s.OutputFormat)
	}
	if err := clientconfig.ValidateBaseURL(s.BaseURL); err != nil {
		return nil, UsageErrorf("%v", err)
	}
	a.settings = s
	return s, nil
}

// Workspace returns the workspace a command acts on: flagValue, else
// $NMP_WORKSPACE, else the context's workspace; none is a usage error.
func (a *App) Workspace(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	s, err := a.Settings()
	if err != nil {
		return "", err
	}
	if s.Workspace == "" {
		return "", UsageErrorf("no workspace: use --workspace, set %s, or run \"nmp config set --workspace W\"", clientconfig.EnvWorkspace)
	}
	return s.Workspace, nil
}

// Client returns an API client for the effective base URL and token. With
// --verbose it logs requests to stderr. A saved JWT that expires within
// five minutes is refreshed first (see autoRefresh): every command that
// calls the server gets its client here.
func (a *App) Client() (*client.Client, error) {
	if err := a.autoRefresh(); err != nil {
		return nil, err
	}
	s, err := a.Settings()
	if err != nil {
		return nil, err
	}
	return a.serverClient(s.BaseURL, trustOf(s), s.Token)
}

// serverTrust is what verifies the nmp server's certificate besides the
// system roots: the context cluster's certificate_authority file and
// certificate_authority_data.
type serverTrust struct {
	file string
	data []byte
}

func trustOf(s *clientconfig.Settings) serverTrust {
	return serverTrust{file: s.CertificateAuthority, data: s.CertificateAuthorityData}
}

// serverClient returns an API client for the nmp server at baseURL that
// sends token (none when empty). Every client of the nmp server is made
// here, so that the plain-HTTP rule holds for every command: an http://
// base URL whose host is not loopback is a usage error unless
// --insecure-http is given, because the token would travel in clear text.
func (a *App) serverClient(baseURL string, trust serverTrust, token string) (*client.Client, error) {
	opts := client.Options{BaseURL: baseURL, Token: token, CertificateAuthority: trust.file,
		CertificateAuthorityData: trust.data, AllowInsecureHTTP: a.Global.InsecureHTTP}
	if a.Global.Verbose {
		opts.Verbose = a.Stderr
	}
	c, err := client.New(opts)
	if errors.Is(err, client.ErrInsecureHTTP) {
		return nil, UsageErrorf("refusing to talk to %s: %v. Use an https:// base URL, or pass --insecure-http if the network between you and the server is trusted", baseURL, err)
	}
	return c, LocalError(err)
}

// Render writes v to stdout in the effective output format; t is its table
// form.
func (a *App) Render(v any, t Table) error {
	s, err := a.Settings()
	if err != nil {
		return err
	}
	return LocalError(render(a.Stdout, s.OutputFormat, v, t))
}

// Infof writes a status message to stderr, keeping stdout for data.
func (a *App) Infof(format string, args ...any) {
	fmt.Fprintf(a.Stderr, format+"\n", args...)
}

// ErrNoTerminal is returned by PromptSecret when stdin is not a terminal.
var ErrNoTerminal = errors.New("stdin is not a terminal")

// PromptSecret prints prompt to stderr and reads a line from the terminal
// on stdin without echo. It fails with ErrNoTerminal when stdin is not a
// terminal.
func (a *App) PromptSecret(ctx context.Context, prompt string) (string, error) {
	f, ok := a.Stdin.(*os.File)
	if !ok || !term.IsTerminal(f) {
		return "", ErrNoTerminal
	}
	fmt.Fprint(a.Stderr, prompt)
	defer fmt.Fprintln(a.Stderr)
	return term.ReadPassword(ctx, f)
}
