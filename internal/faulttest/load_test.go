//go:build faults

package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
)

// The load's shape.
const (
	workspaces = 4
	users      = 24 // u0..u23: Viewer grants and revokes come and go
	workers    = 8
	// propagationBound is how long after an acknowledged change a
	// decision may still reflect the old state. A single process applies
	// a change before acknowledging it, so any wrong deny counts.
	propagationBound = 0
)

type pairKey struct{ user, ws int }

// pair is the harness's view of one user's membership in one workspace.
type pair struct {
	known    bool // false after a change whose outcome was not acknowledged
	member   bool
	changing bool
	gen      uint64
	since    time.Time // when the current state was acknowledged
	// unapplied: the change was committed and acknowledged, but the
	// server said (X-NMP-Role-Propagation other than complete) that its
	// policy did not hold it yet — the database it must read the change
	// back from was failing. Until the fault is over the old answer is
	// possible; after it, any is wrong.
	unapplied bool
}

// load drives a server and checks every answer.
type load struct {
	t       *testing.T
	base    string
	client  *http.Client
	tokens  map[string]string // email -> bearer token
	timeout time.Duration     // a request slower than this is a hang

	mu    sync.Mutex
	pairs map[pairKey]*pair
	acked map[string]bool // "ws/project" acknowledged with 201

	faulty atomic.Bool // a fault is in progress: 503 + Retry-After is accepted

	statsMu sync.Mutex
	lat     map[string][]time.Duration
	count   map[string]map[int]int // route -> status -> n

	wrongAllow      atomic.Int64
	wrongDeny       atomic.Int64
	errorsUnplanned atomic.Int64 // 5xx outside a fault, any 500, transport errors
	unavailable     atomic.Int64 // 503/507 (504 pdp_timeout) during a fault
	hangs           atomic.Int64
	faultDenials    atomic.Int64 // denials decided while a fault was in progress
	// closedDenials are denials of allowed requests during a fault (a
	// PDP that answers before it has loaded its policy): failing closed,
	// reported, not counted as wrong denies.
	closedDenials atomic.Int64
	// unappliedAllows are allows after a revoke the server acknowledged
	// as committed but not yet applied (during a fault).
	unappliedAllows atomic.Int64
	unappliedAcks   atomic.Int64
	problemN        atomic.Int64
}

func userEmail(i int) string   { return fmt.Sprintf("u%d@example.com", i) }
func editorEmail(w int) string { return fmt.Sprintf("editor%d@example.com", w) }
func wsName(w int) string      { return fmt.Sprintf("load-%d", w) }

func newLoad(t *testing.T, base string, iss *oidctest.Issuer, timeout time.Duration) *load {
	l := &load{t: t, base: base, timeout: timeout, tokens: map[string]string{},
		client: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		pairs:  map[pairKey]*pair{}, acked: map[string]bool{}, lat: map[string][]time.Duration{},
		count: map[string]map[int]int{}}
	mint := func(email string) {
		l.tokens[email] = iss.Mint(t, oidctest.Claims{Subject: "sub-" + email, Email: email,
			Scope: "openid platform:read platform:write", TTL: 2 * time.Hour})
	}
	mint(adminEmail)
	for i := 0; i < users; i++ {
		mint(userEmail(i))
	}
	for w := 0; w < workspaces; w++ {
		mint(editorEmail(w))
	}
	return l
}

func (l *load) problem(kind, format string, args ...any) {
	if l.problemN.Add(1) <= 20 {
		l.t.Logf("%s: %s", kind, fmt.Sprintf(format, args...))
	}
}

// do sends one request as email and returns the status and body.
func (l *load) do(email, method, path string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+l.tokens[email])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// setup creates the workspaces (admin) and gives each its editor.
func (l *load) setup() {
	for w := 0; w < workspaces; w++ {
		st, _, b, err := l.do(adminEmail, http.MethodPost, "/apis/entities/v2/workspaces", map[string]string{"name": wsName(w)})
		if err != nil || st != http.StatusCreated {
			l.t.Fatalf("create workspace: %d %s %v", st, b, err)
		}
		st, _, b, err = l.do(adminEmail, http.MethodPost, "/apis/entities/v2/workspaces/"+wsName(w)+"/members",
			map[string]any{"principal": editorEmail(w), "roles": []string{"Editor"}})
		if err != nil || st != http.StatusCreated {
			l.t.Fatalf("add editor: %d %s %v", st, b, err)
		}
		for u := 0; u < users; u++ {
			l.pairs[pairKey{u, w}] = &pair{known: true, since: time.Now()}
		}
	}
}

// record judges transport-level outcomes and keeps the statistics.
// It returns false when the response cannot be judged further.
func (l *load) record(route string, start time.Time, faultAtStart bool, st int, h http.Header, body []byte, err error) bool {
	took := time.Since(start)
	l.statsMu.Lock()
	if l.count[route] == nil {
		l.count[route] = map[int]int{}
	}
	l.count[route][st]++
	if err == nil {
		l.lat[route] = append(l.lat[route], took)
	}
	l.statsMu.Unlock()
	fault := faultAtStart || l.faulty.Load()
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			l.hangs.Add(1)
			l.problem("hang", "%s: no answer within %v", route, l.timeout)
			return false
		}
		if fault {
			// The server is up throughout; a reset connection is not a
			// planned outcome even during a fault.
			l.problem("transport", "%s: %v", route, err)
		}
		l.errorsUnplanned.Add(1)
		return false
	case st == http.StatusServiceUnavailable || st == http.StatusInsufficientStorage ||
		(st == http.StatusGatewayTimeout && strings.Contains(string(body), `"pdp_timeout"`)):
		// 504 pdp_timeout: a decision point that did not answer in time
		// (an OPA still starting up) — refused, like a 503.
		var e struct{ Code string }
		_ = json.Unmarshal(body, &e)
		if !fault {
			l.errorsUnplanned.Add(1)
			l.problem("unplanned "+strconvI(st), "%s: %d %s", route, st, body)
			return false
		}
		if st == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
			l.errorsUnplanned.Add(1)
			l.problem("503 without Retry-After", "%s: %s", route, body)
		}
		l.unavailable.Add(1)
		return false
	case st >= 500:
		l.errorsUnplanned.Add(1)
		l.problem("5xx", "%s: %d %s", route, st, body)
		return false
	}
	return true
}

func strconvI(i int) string { return fmt.Sprint(i) }

// read: a user GETs a workspace or its projects; judged against the pair.
func (l *load) read(rng *rand.Rand) {
	k := pairKey{rng.IntN(users), rng.IntN(workspaces)}
	route, path := "GET workspace", "/apis/entities/v2/workspaces/"+wsName(k.ws)
	if rng.IntN(2) == 0 {
		route, path = "GET projects", path+"/projects"
	}
	l.mu.Lock()
	p := *l.pairs[k]
	l.mu.Unlock()
	fault := l.faulty.Load()
	start := time.Now()
	st, h, body, err := l.do(userEmail(k.user), http.MethodGet, path, nil)
	if !l.record(route, start, fault, st, h, body, err) {
		return
	}
	l.mu.Lock()
	now := *l.pairs[k]
	l.mu.Unlock()
	stable := p.known && !p.changing && now.gen == p.gen
	if stable && p.unapplied && (fault || l.faulty.Load()) {
		if st == http.StatusOK && !p.member {
			l.unappliedAllows.Add(1)
		}
		stable = false
	}
	allowed := st == http.StatusOK
	denied := st == http.StatusForbidden || st == http.StatusNotFound
	if fault && denied {
		l.faultDenials.Add(1)
	}
	switch {
	case !allowed && !denied:
		l.errorsUnplanned.Add(1)
		l.problem("unexpected status", "%s as %s: %d %s", route, userEmail(k.user), st, body)
	case !stable:
	case allowed && !p.member:
		l.wrongAllow.Add(1)
		l.problem("WRONG ALLOW", "%s as %s (not a member since %v): %d", route, userEmail(k.user), p.since, st)
	case denied && p.member && (fault || l.faulty.Load()):
		l.closedDenials.Add(1)
	case denied && p.member && start.Sub(p.since) >= propagationBound:
		l.wrongDeny.Add(1)
		l.problem("wrong deny", "%s as %s (member since %v): %d %s", route, userEmail(k.user), p.since, st, body)
	}
}

// write: the workspace's editor creates a project (acknowledged writes
// are checked at the end); a Viewer-or-nobody user trying the same must
// be refused.
func (l *load) write(rng *rand.Rand, seq *atomic.Int64) {
	w := rng.IntN(workspaces)
	path := "/apis/entities/v2/workspaces/" + wsName(w) + "/projects"
	fault := l.faulty.Load()
	if rng.IntN(4) == 0 {
		u := rng.IntN(users)
		name := fmt.Sprintf("intruder-%d", seq.Add(1))
		start := time.Now()
		st, h, body, err := l.do(userEmail(u), http.MethodPost, path, map[string]string{"name": name})
		if !l.record("POST projects (refused)", start, fault, st, h, body, err) {
			return
		}
		if st < 300 {
			l.wrongAllow.Add(1)
			l.problem("WRONG ALLOW", "project create by %s in %s: %d", userEmail(u), wsName(w), st)
		} else if st != http.StatusForbidden && st != http.StatusNotFound {
			l.errorsUnplanned.Add(1)
			l.problem("unexpected status", "refused create: %d %s", st, body)
		} else if fault {
			l.faultDenials.Add(1)
		}
		return
	}
	name := fmt.Sprintf("p-%d", seq.Add(1))
	start := time.Now()
	st, h, body, err := l.do(editorEmail(w), http.MethodPost, path, map[string]string{"name": name})
	if !l.record("POST projects", start, fault, st, h, body, err) {
		return
	}
	if st == http.StatusForbidden && (fault || l.faulty.Load()) {
		l.closedDenials.Add(1)
		return
	}
	if st != http.StatusCreated {
		l.errorsUnplanned.Add(1)
		l.problem("unexpected status", "create project: %d %s", st, body)
		return
	}
	l.mu.Lock()
	l.acked[wsName(w)+"/"+name] = true
	l.mu.Unlock()
}

// change: the admin grants or revokes Viewer for one (user, workspace).
func (l *load) change(rng *rand.Rand) {
	k := pairKey{rng.IntN(users), rng.IntN(workspaces)}
	l.mu.Lock()
	p := l.pairs[k]
	if p.changing {
		l.mu.Unlock()
		return
	}
	p.changing = true
	p.gen++
	grant := !p.known || !p.member
	l.mu.Unlock()
	fault := l.faulty.Load()
	start := time.Now()
	var st int
	var h http.Header
	var body []byte
	var err error
	route := "POST members"
	if grant {
		st, h, body, err = l.do(adminEmail, http.MethodPost, "/apis/entities/v2/workspaces/"+wsName(k.ws)+"/members",
			map[string]any{"principal": userEmail(k.user), "roles": []string{"Viewer"}})
	} else {
		route = "DELETE member"
		st, h, body, err = l.do(adminEmail, http.MethodDelete, "/apis/entities/v2/workspaces/"+wsName(k.ws)+"/members/"+url.PathEscape(userEmail(k.user)), nil)
	}
	ok := l.record(route, start, fault, st, h, body, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	p.changing = false
	p.gen++
	p.since = time.Now()
	p.unapplied = false
	if ok && st < 300 && h.Get("X-NMP-Role-Propagation") != "complete" {
		p.unapplied = true
		l.unappliedAcks.Add(1)
	}
	switch {
	case ok && grant && (st == http.StatusCreated || (st == http.StatusConflict && !p.known)):
		p.known, p.member = true, true
	case ok && !grant && st < 300:
		p.known, p.member = true, false
	case ok && st == http.StatusForbidden && (fault || l.faulty.Load()):
		l.closedDenials.Add(1)
		p.known = false
	case ok:
		l.errorsUnplanned.Add(1)
		l.problem("unexpected status", "%s %s in %s: %d %s", route, userEmail(k.user), wsName(k.ws), st, body)
		p.known = false
	default:
		p.known = false // not acknowledged: the outcome is unknown until the next grant
	}
}

// run drives the load until ctx ends and returns the wall time.
func (l *load) run(ctx context.Context) time.Duration {
	var seq atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				switch n := rng.IntN(10); {
				case n < 6:
					l.read(rng)
				case n < 8:
					l.write(rng, &seq)
				default:
					l.change(rng)
				}
			}
		}(i)
	}
	wg.Wait()
	return time.Since(start)
}

// verify checks, with the server healthy, that every acknowledged project
// exists and that the members of each workspace are exactly the users
// the harness knows to be members (each with exactly Viewer), and
// returns the number of acknowledged writes that are missing.
func (l *load) verify() (lost int) {
	t := l.t
	// Settle unknown pairs: grant again (201 or 409 both mean member).
	for k, p := range l.pairs {
		if p.known {
			continue
		}
		st, _, b, err := l.do(adminEmail, http.MethodPost, "/apis/entities/v2/workspaces/"+wsName(k.ws)+"/members",
			map[string]any{"principal": userEmail(k.user), "roles": []string{"Viewer"}})
		if err != nil || (st != http.StatusCreated && st != http.StatusConflict) {
			t.Errorf("settle %v: %d %s %v", k, st, b, err)
			continue
		}
		p.known, p.member = true, true
	}
	for w := 0; w < workspaces; w++ {
		st, _, b, err := l.do(adminEmail, http.MethodGet, "/apis/entities/v2/workspaces/"+wsName(w)+"/members", nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("list members: %d %s %v", st, b, err)
		}
		var page struct {
			Data []struct {
				Principal string   `json:"principal"`
				Roles     []string `json:"roles"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, m := range page.Data {
			got[m.Principal] = m.Roles
		}
		for u := 0; u < users; u++ {
			p := l.pairs[pairKey{u, w}]
			roles, listed := got[userEmail(u)]
			if p.member != listed {
				t.Errorf("%s in %s: member %v in the store, %v acknowledged", userEmail(u), wsName(w), listed, p.member)
			}
			if listed && (len(roles) != 1 || roles[0] != "Viewer") {
				t.Errorf("%s in %s: roles %v, want [Viewer] (a half-written change)", userEmail(u), wsName(w), roles)
			}
		}
		for pageNo := 1; ; pageNo++ {
			st, _, b, err := l.do(adminEmail, http.MethodGet, fmt.Sprintf("/apis/entities/v2/workspaces/%s/projects?page=%d&page_size=100", wsName(w), pageNo), nil)
			if err != nil || st != http.StatusOK {
				t.Fatalf("list projects: %d %s %v", st, b, err)
			}
			var pp struct {
				Data []struct {
					Name string `json:"name"`
				} `json:"data"`
				Pagination struct {
					TotalPages int `json:"total_pages"`
				} `json:"pagination"`
			}
			if err := json.Unmarshal(b, &pp); err != nil {
				t.Fatal(err)
			}
			for _, p := range pp.Data {
				if strings.HasPrefix(p.Name, "intruder-") {
					t.Errorf("project %s/%s was created by a principal without the right", wsName(w), p.Name)
				}
				delete(l.acked, wsName(w)+"/"+p.Name)
			}
			if pageNo >= pp.Pagination.TotalPages {
				break
			}
		}
	}
	for k := range l.acked {
		t.Errorf("acknowledged project %s is missing", k)
		lost++
	}
	return lost
}

// report logs throughput, percentiles and the judgement, and fails the
// test on a wrong decision or a hang.
func (l *load) report(name string, wall time.Duration) {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	routes := make([]string, 0, len(l.count))
	total := 0
	for r, m := range l.count {
		routes = append(routes, r)
		for _, n := range m {
			total += n
		}
	}
	sort.Strings(routes)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d requests in %v = %.0f req/s; wrong allows %d, wrong denies %d, unplanned errors %d, hangs %d, 503/507/504 during faults %d, denials decided during faults %d, allowed requests denied during faults (fail-closed) %d, changes acknowledged as not yet applied %d (allows after such a revoke, during the fault: %d)\n",
		name, total, wall.Round(time.Millisecond), float64(total)/wall.Seconds(), l.wrongAllow.Load(), l.wrongDeny.Load(),
		l.errorsUnplanned.Load(), l.hangs.Load(), l.unavailable.Load(), l.faultDenials.Load(), l.closedDenials.Load(), l.unappliedAcks.Load(), l.unappliedAllows.Load())
	for _, r := range routes {
		lat := l.lat[r]
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Fprintf(&b, "  %-24s n=%-6d p50 %-9v p99 %-9v p999 %-9v statuses %v\n", r, len(lat),
			pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999), l.count[r])
	}
	l.t.Log(b.String())
	if n := l.wrongAllow.Load(); n > 0 {
		l.t.Errorf("%d wrong allows", n)
	}
	if n := l.wrongDeny.Load(); n > 0 {
		l.t.Errorf("%d wrong denies", n)
	}
	if n := l.hangs.Load(); n > 0 {
		l.t.Errorf("%d requests hung past %v", n, l.timeout)
	}
	if n := l.errorsUnplanned.Load(); n > 0 {
		l.t.Errorf("%d unplanned errors", n)
	}
	if total < 50 {
		l.t.Errorf("only %d requests: the load proved little", total)
	}
}

func pct(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q * float64(len(s)))
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i].Round(10 * time.Microsecond)
}
