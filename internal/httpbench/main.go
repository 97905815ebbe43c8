// Command httpbench is the repeatable HTTP benchmark of the request path
// (docs/benchmarks.md "HTTP request path"). It builds nmp, seeds a SQLite
// database with a caller who sees a few workspaces among many, starts an
// empty net/http handler (the baseline) and `nmp services run` with auth
// off and with auth on (development mode: callers present unsigned
// development JWTs, auth.allow_unsigned_jwt), then runs wrk against each target
// in interleaved rounds and prints requests/s, p50/p99 latency and the
// server's CPU time per request (utime+stime from /proc/<pid>/stat)
// against the baseline's.
//
//	go run ./internal/httpbench -duration 5s -rounds 3
//
// It needs wrk (Debian package wrk) and Linux's /proc. It is not a test:
// `go test ./...` only checks its flags and table.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
)

// options are the command line.
type options struct {
	duration    time.Duration
	rounds      int
	connections int
	threads     int
	workspaces  int
	visible     int
	wrk         string
	nmp         string // a prebuilt binary ("": build ./cmd/nmp)
	keep        bool
	only        string // comma-separated target names ("": all)
	token       string // "rs256" (an OIDC issuer's signed tokens) or "unsigned"
	accessLog   string // service.access_log.level of both nmp servers ("": the default)
	serveEmpty  string // internal: serve the empty handler on this address
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("httpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "wrk duration of each measurement")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds over every target")
	fs.IntVar(&o.connections, "connections", 16, "wrk connections")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.workspaces, "workspaces", 10000, "workspaces in the database")
	fs.IntVar(&o.visible, "visible", 20, "workspaces the caller is a member of (sees)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "the wrk binary")
	fs.StringVar(&o.nmp, "nmp", "", "an nmp binary to measure (default: build ./cmd/nmp)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, logs, scripts)")
	fs.StringVar(&o.only, "only", "", "comma-separated targets to run (default all): "+strings.Join(targetNames(), ","))
	fs.StringVar(&o.token, "token", "rs256", "callers' bearer tokens: rs256 (signed by an OIDC issuer this program serves, as in production) or unsigned (development JWTs, auth.allow_unsigned_jwt)")
	fs.StringVar(&o.accessLog, "access-log", "", "service.access_log.level of both nmp servers (default: their default, info): debug, info, warn, error or off")
	fs.StringVar(&o.serveEmpty, "serve-empty", "", "internal: serve the empty handler on this address")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.duration < time.Second:
		return o, errors.New("-duration must be at least 1s")
	case o.rounds < 1, o.connections < 1, o.threads < 1:
		return o, errors.New("-rounds, -connections and -threads must be at least 1")
	case o.threads > o.connections:
		return o, errors.New("-threads must not exceed -connections")
	case o.visible < 1 || o.workspaces < o.visible:
		return o, errors.New("-visible must be between 1 and -workspaces")
	case o.token != "rs256" && o.token != "unsigned":
		return o, errors.New("-token must be rs256 or unsigned")
	case !regexp.MustCompile(`^(|debug|info|warn|error|off)$`).MatchString(o.accessLog):
		return o, errors.New("-access-log must be debug, info, warn, error or off")
	}
	if o.only != "" {
		known := map[string]bool{}
		for _, n := range targetNames() {
			known[n] = true
		}
		for _, n := range strings.Split(o.only, ",") {
			if !known[n] {
				return o, fmt.Errorf("-only: unknown target %q", n)
			}
		}
	}
	return o, nil
}

// The servers.
const (
	serverEmpty   = "empty"
	serverAuthOff = "auth off"
	serverAuthOn  = "auth on"
)

// Principals of the seeded database.
const (
	benchUser  = "bench-user"  // member (Viewer) of the visible workspaces
	benchAdmin = "bench-admin" // PlatformAdmin: asks the PDP entrypoint
)

// target is one measured request.
type target struct {
	name   string
	server string
	method string
	path   string
	header map[string]string
	body   string
	// same names the target sending this request's very bytes to the
	// empty handler ("": none).
	same string
}

// targets are the measured requests; ws is a workspace the caller sees
// and token mints a caller's bearer token.
func targets(ws string, token func(sub string) string) []target {
	user := map[string]string{"Authorization": "Bearer " + token(benchUser)}
	pdpAllow := target{name: "pdp-allow", server: serverAuthOn, method: "POST", path: "/apis/auth/v2/authz/allow",
		header: map[string]string{"Authorization": "Bearer " + token(benchAdmin), "Content-Type": "application/json"},
		body:   fmt.Sprintf(`{"input":{"principal_id":%q,"method":"GET","path":"/apis/entities/v2/workspaces/%s"}}`, benchUser, ws),
		same:   "empty-pdp-allow"}
	callout := target{name: "callout", server: serverAuthOn, method: "GET", path: "/apis/auth/authenticate",
		header: map[string]string{"Authorization": "Bearer " + token(benchUser), "X-Forwarded-Method": "GET",
			"X-Forwarded-Uri": "/apis/entities/v2/workspaces/" + ws},
		same: "empty-callout"}
	// the empty handler receiving the same bytes: what net/http and the
	// kernel cost for this request's size, before nmp does anything
	emptyAs := func(t target) target {
		t.name, t.server, t.same = t.same, serverEmpty, ""
		return t
	}
	return []target{
		{name: "empty", server: serverEmpty, method: "GET", path: "/"},
		emptyAs(pdpAllow),
		emptyAs(callout),
		pdpAllow,
		callout,
		{name: "get-off", server: serverAuthOff, method: "GET", path: "/apis/entities/v2/workspaces/" + ws},
		{name: "get-on", server: serverAuthOn, method: "GET", path: "/apis/entities/v2/workspaces/" + ws, header: user},
		{name: "list-off", server: serverAuthOff, method: "GET", path: "/apis/entities/v2/workspaces"},
		{name: "list-on", server: serverAuthOn, method: "GET", path: "/apis/entities/v2/workspaces", header: user},
	}
}

// unsignedToken is an unsigned development JWT (alg none) for sub,
// accepted with auth.allow_unsigned_jwt.
func unsignedToken(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"sub":%q,"iat":%d}`, sub, time.Now().Unix()))) + "."
}

func targetNames() []string {
	var names []string
	for _, t := range targets("x", unsignedToken) {
		names = append(names, t.name)
	}
	return names
}

// luaScript is the wrk script sending t's method, headers and body.
func luaScript(t target) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %q\n", t.method)
	if t.body != "" {
		fmt.Fprintf(&b, "wrk.body = %q\n", t.body)
	}
	keys := make([]string, 0, len(t.header))
	for k := range t.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, t.header[k])
	}
	return b.String()
}

// sample is one wrk run against one target.
type sample struct {
	requests  int64
	non2xx    int64
	errors    int64
	rps       float64
	p50, p99  time.Duration
	cpu       time.Duration // server utime+stime over the run
	wallClock time.Duration
}

// result aggregates a target's samples.
type result struct {
	name       string
	rps        float64       // median over rounds
	p50, p99   time.Duration // median over rounds
	cpuPerReq  time.Duration // total CPU / total requests
	ratio      float64       // cpuPerReq / baseline's (0: no baseline)
	sameRatio  float64       // cpuPerReq / the same request's on the empty handler (0: not measured)
	non2xx     int64
	socketErrs int64
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// aggregate turns the samples of each target (in order) into results,
// the ratio against the target named baseline and the one against the
// target same names (the same request on the empty handler).
func aggregate(order []string, samples map[string][]sample, baseline string, same map[string]string) []result {
	var out []result
	for _, name := range order {
		ss := samples[name]
		if len(ss) == 0 {
			continue
		}
		var rps []float64
		var p50, p99 []time.Duration
		var reqs int64
		var cpu time.Duration
		r := result{name: name}
		for _, s := range ss {
			rps = append(rps, s.rps)
			p50 = append(p50, s.p50)
			p99 = append(p99, s.p99)
			reqs += s.requests
			cpu += s.cpu
			r.non2xx += s.non2xx
			r.socketErrs += s.errors
		}
		r.rps, r.p50, r.p99 = median(rps), median(p50), median(p99)
		if reqs > 0 {
			r.cpuPerReq = cpu / time.Duration(reqs)
		}
		out = append(out, r)
	}
	var base time.Duration
	for _, r := range out {
		if r.name == baseline {
			base = r.cpuPerReq
		}
	}
	cpu := map[string]time.Duration{}
	for _, r := range out {
		cpu[r.name] = r.cpuPerReq
	}
	for i := range out {
		if base > 0 {
			out[i].ratio = float64(out[i].cpuPerReq) / float64(base)
		}
		if c := cpu[same[out[i].name]]; c > 0 {
			out[i].sameRatio = float64(out[i].cpuPerReq) / float64(c)
		}
	}
	return out
}

// renderTable writes the results as a Markdown table.
func renderTable(w io.Writer, rs []result) error {
	fmt.Fprintln(w, "| Target | Requests/s | p50 | p99 | CPU/request | × baseline CPU | × same request on the empty handler |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	times := func(x float64) string {
		if x > 0 {
			return fmt.Sprintf("%.2f×", x)
		}
		return "–"
	}
	for _, r := range rs {
		note := ""
		if r.non2xx > 0 || r.socketErrs > 0 {
			note = fmt.Sprintf(" (%d non-2xx, %d socket errors)", r.non2xx, r.socketErrs)
		}
		if _, err := fmt.Fprintf(w, "| %s%s | %.0f | %s | %s | %.1f µs | %s | %s |\n", r.name, note, r.rps,
			fmtDur(r.p50), fmtDur(r.p99), float64(r.cpuPerReq)/float64(time.Microsecond), times(r.ratio), times(r.sameRatio)); err != nil {
			return err
		}
	}
	return nil
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// parseWrk reads what wrk --latency prints.
func parseWrk(out string) (sample, error) {
	var s sample
	reqs := regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+\w+),`).FindStringSubmatch(out)
	rps := regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`).FindStringSubmatch(out)
	p50 := regexp.MustCompile(`(?m)^\s*50%\s+([0-9.]+\w+)`).FindStringSubmatch(out)
	p99 := regexp.MustCompile(`(?m)^\s*99%\s+([0-9.]+\w+)`).FindStringSubmatch(out)
	if reqs == nil || rps == nil || p50 == nil || p99 == nil {
		return s, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	s.requests, _ = strconv.ParseInt(reqs[1], 10, 64)
	s.rps, _ = strconv.ParseFloat(rps[1], 64)
	var err error
	if s.p50, err = wrkDuration(p50[1]); err != nil {
		return s, err
	}
	if s.p99, err = wrkDuration(p99[1]); err != nil {
		return s, err
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses:\s*(\d+)`).FindStringSubmatch(out); m != nil {
		s.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`).FindStringSubmatch(out); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			s.errors += n
		}
	}
	return s, nil
}

// wrkDuration parses wrk's durations: 1.23ms, 456.00us, 1.02s, 2.00m.
func wrkDuration(s string) (time.Duration, error) {
	return time.ParseDuration(strings.Replace(s, "us", "µs", 1))
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat
// (USER_HZ, 100 on every Linux platform Go supports).
const clockTicks = 100

// cpuTime is the process's utime+stime.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(2)
	}
	if o.serveEmpty != "" {
		err = serveEmpty(o.serveEmpty)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, o, os.Stdout, os.Stderr)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

// serveEmpty is the baseline: a net/http server whose handler writes
// nothing (200, empty body).
func serveEmpty(addr string) error {
	return http.ListenAndServe(addr, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) //nolint:gosec // a benchmark server on loopback
}

// server is a started process.
type server struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk not found (apt-get install wrk): %w", err)
	}
	dir, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "keeping", dir)
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	bin := o.nmp
	if bin == "" {
		bin = filepath.Join(dir, "nmp")
		fmt.Fprintln(stderr, "building nmp …")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nmp-project/nmp/cmd/nmp")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build nmp: %w", err)
		}
	}
	fmt.Fprintf(stderr, "seeding %d workspaces, %d visible to %s …\n", o.workspaces, o.visible, benchUser)
	ws, err := seed(ctx, filepath.Join(dir, "on"), o.workspaces, o.visible)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := copyDB(ctx, filepath.Join(dir, "on"), filepath.Join(dir, "off")); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	servers := map[string]*server{}
	defer func() {
		for _, s := range servers {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}
	}()
	token, authOn := unsignedToken, "{enabled: true, allow_unsigned_jwt: true, authenticate_authorize: true}"
	if o.token == "rs256" {
		iss, err := startIssuer()
		if err != nil {
			return fmt.Errorf("start the token issuer: %w", err)
		}
		defer iss.close()
		token, authOn = iss.token, iss.authConfig()
	}
	for _, name := range []string{serverEmpty, serverAuthOff, serverAuthOn} {
		s, err := start(ctx, o, name, dir, bin, self, authOn)
		if err != nil {
			return err
		}
		servers[name] = s
	}
	ts := targets(ws, token)
	if o.only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(o.only, ",") {
			keep[n] = true
		}
		var sel []target
		for _, t := range ts {
			if keep[t.name] {
				sel = append(sel, t)
			}
		}
		ts = sel
	}
	var order []string
	same := map[string]string{}
	for _, t := range ts {
		order = append(order, t.name)
		same[t.name] = t.same
		if err := os.WriteFile(filepath.Join(dir, t.name+".lua"), []byte(luaScript(t)), 0o600); err != nil {
			return err
		}
		// one request first: a target that fails is reported now, not
		// as a table of errors
		if err := probe(ctx, servers[t.server].url, t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	samples := map[string][]sample{}
	loadBefore := loadAvg()
	for round := 1; round <= o.rounds; round++ {
		for _, t := range ts {
			s := servers[t.server]
			fmt.Fprintf(stderr, "round %d/%d: %s\n", round, o.rounds, t.name)
			smp, err := measure(ctx, o, s, filepath.Join(dir, t.name+".lua"), t.path)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			samples[t.name] = append(samples[t.name], smp)
		}
	}
	fmt.Fprintf(stdout, "wrk -t%d -c%d -d%s --latency, %d interleaved rounds; %d workspaces, %d visible to the caller (and system); %s bearer tokens; access log %s; load average (1, 5, 15 min) before: %s, after: %s\n\n",
		o.threads, o.connections, o.duration, o.rounds, o.workspaces, o.visible, o.token, orDefault(o.accessLog, "at its default level"), loadBefore, loadAvg())
	return renderTable(stdout, aggregate(order, samples, "empty", same))
}

// measure runs wrk once against s, reading s's CPU time around it.
func measure(ctx context.Context, o options, s *server, script, path string) (sample, error) {
	before, err := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, o.wrk, "-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.connections),
		"-d", fmt.Sprintf("%ds", int(o.duration.Seconds())), "--latency", "-s", script, s.url+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	after, err := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	smp, err := parseWrk(string(out))
	smp.cpu, smp.wallClock = after-before, time.Since(start)
	return smp, err
}

// probe sends t once and wants a 2xx.
func probe(ctx context.Context, base string, t target) error {
	req, err := http.NewRequestWithContext(ctx, t.method, base+t.path, strings.NewReader(t.body))
	if err != nil {
		return err
	}
	for k, v := range t.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", t.method, t.path, resp.StatusCode, body)
	}
	return nil
}

// seed creates the database of the auth-on server in dir: n workspaces
// ws-00001…, of which visible (spread evenly) have benchUser as Viewer,
// benchAdmin as PlatformAdmin, and everyone Viewer of system (the default
// seed's grant that lets callers list workspaces). It returns a visible workspace.
func seed(ctx context.Context, dir string, n, visible int) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite://" + filepath.Join(dir, "entities.db"), Migrate: true})
	if err != nil {
		return "", err
	}
	defer func() { _ = st.Close() }()
	if err := st.EnsureBuiltins(ctx, store.Seed{Bindings: []store.SeedBinding{
		{Name: "bench-admin-system-platformadmin", Principal: benchAdmin, Workspace: store.SystemWorkspace, Role: "PlatformAdmin"},
		// as the default seed: everyone may list workspaces (and sees system)
		{Name: "wildcard-system-viewer", Principal: "*", Workspace: store.SystemWorkspace, Role: "Viewer"},
	}}); err != nil {
		return "", err
	}
	admin := benchAdmin
	step := n / visible
	var some string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("ws-%05d", i)
		if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: name, By: &admin}); err != nil {
			return "", err
		}
		if i%step == 0 && i/step <= visible {
			if _, err := st.AddMember(ctx, name, benchUser, []string{"Viewer"}, benchAdmin); err != nil {
				return "", err
			}
			some = name
		}
	}
	return some, st.Close()
}

// copyDB writes a consistent copy of one server's SQLite database into
// another's data directory with VACUUM INTO (a copy of the files could
// miss what is still in the write-ahead log).
func copyDB(ctx context.Context, from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(from, "entities.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", filepath.Join(to, "entities.db")); err != nil {
		return fmt.Errorf("copy the database: %w", err)
	}
	return db.Close()
}

// start starts one server and waits until it answers.
func start(ctx context.Context, o options, name, dir, bin, self, authOn string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	ready := "/"
	switch name {
	case serverEmpty:
		cmd = exec.CommandContext(ctx, self, "-serve-empty", addr)
	default:
		sub, auth := "off", "{enabled: false}"
		if name == serverAuthOn {
			sub, auth = "on", authOn
		}
		accessLog := ""
		if o.accessLog != "" {
			accessLog = ", access_log: {level: " + o.accessLog + "}"
		}
		cfg := fmt.Sprintf("platform: {data_dir: %q, seed_on_startup: false}\nservice: {host: 127.0.0.1, port: %d%s}\nauth: %s\n",
			filepath.Join(dir, sub), port, accessLog, auth)
		file := filepath.Join(dir, "nmp-"+sub+".yaml")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, bin, "services", "run", "--config", file)
		ready = "/health/ready"
	}
	logFile, err := os.Create(filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, url: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + ready) //nolint:noctx // bounded by the loop
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s server not ready after 60 s (log: %s)", name, logFile.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return "unknown"
	}
	fs := strings.Fields(sc.Text())
	if len(fs) < 3 {
		return "unknown"
	}
	return strings.Join(fs[:3], " ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
