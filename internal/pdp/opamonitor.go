package pdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
)

// HealthComponent is the readiness component of the external OPA.
const HealthComponent = "pdp"

// BundleRoot is the root of the policy bundle OPA must have activated.
const BundleRoot = "authz"

// RemoteStatus is the last readiness check of the external OPA, shown by
// /status.
type RemoteStatus struct {
	// CheckedAt is the time of the check (zero before the first).
	CheckedAt time.Time
	// Reachable: OPA answered GET /health?bundles with 200 (it is up and
	// has activated every bundle it is configured with).
	Reachable bool
	// Revision is the revision of OPA's activated bundle with root authz;
	// HasRevision is false when none was found.
	Revision    int64
	HasRevision bool
	// Local is this process's policy revision at the check.
	Local int64
	// BehindSince is when this process first knew a revision OPA still
	// lacks (zero when OPA is in step).
	BehindSince time.Time
	// Err is why OPA is not ready; nil when it is.
	Err error
}

// RemoteReporter is implemented by a decision point that relies on a
// remote service (/status shows its state).
type RemoteReporter interface {
	Remote() RemoteStatus
}

// Remote returns the last readiness check (see Monitor).
func (p *OPA) Remote() RemoteStatus {
	p.remoteMu.RLock()
	defer p.remoteMu.RUnlock()
	return p.remote
}

func (p *OPA) setRemote(s RemoteStatus) {
	p.remoteMu.Lock()
	p.remote = s
	p.remoteMu.Unlock()
}

// MonitorOptions configure a Monitor.
type MonitorOptions struct {
	// Local returns this process's policy revision (the highest it has
	// applied or heard of).
	Local func() int64
	// MaxLag is how long OPA may lack a revision this process knows before
	// it is not ready (auth.propagation_timeout_seconds).
	MaxLag time.Duration
	// Interval between checks (default 1 s).
	Interval time.Duration
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Health receives the outcome under HealthComponent (health.State).
	Health interface {
		Set(component string, err error)
	}
	// Log receives one line when OPA stops being ready and one when it is
	// ready again (default: discard).
	Log *slog.Logger
}

// Monitor is the background component that checks OPA's readiness: OPA
// answers, has activated its bundles, and its authz bundle's revision is
// this process's, or lags behind it for less than MaxLag.
type Monitor struct {
	opa *OPA
	o   MonitorOptions

	mu sync.Mutex
	// pending are the revisions this process knew while OPA lacked them,
	// each with the time it was first seen, in increasing order.
	pending []pendingRevision
	ready   bool
	checked bool
}

type pendingRevision struct {
	revision int64
	since    time.Time
}

// maxPending bounds the remembered revisions while OPA is stuck.
const maxPending = 256

// Monitor returns the readiness component of p.
func (p *OPA) Monitor(o MonitorOptions) *Monitor {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{opa: p, o: o}
}

// Name implements lifecycle.Component; it is the health component's name,
// so a monitor that ends early fails readiness.
func (m *Monitor) Name() string { return HealthComponent }

// Run checks at once and then every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		_ = m.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check runs one check, records it (health, Remote) and returns why OPA
// is not ready, or nil. A check cut short by ctx records nothing.
func (m *Monitor) Check(ctx context.Context) error {
	st := RemoteStatus{}
	err := m.probe(ctx, &st)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := m.o.Clock()
	st.CheckedAt = now
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		err = m.lag(now, &st)
	}
	st.Err = err
	m.opa.setRemote(st)
	if m.o.Health != nil {
		m.o.Health.Set(HealthComponent, err)
	}
	switch {
	case err != nil && (m.ready || !m.checked):
		m.o.Log.Warn("external OPA not ready", "error", err.Error())
	case err == nil && !m.ready:
		m.o.Log.Info("external OPA ready", "revision", st.Revision, "local_revision", st.Local)
	}
	m.ready, m.checked = err == nil, true
	return err
}

// probe asks OPA for its health and its authz bundle's revision.
func (m *Monitor) probe(ctx context.Context, st *RemoteStatus) error {
	if _, err := m.opa.call(ctx, http.MethodGet, "/health?bundles", nil); err != nil {
		if errors.Is(err, ErrBadAnswer) {
			return fmt.Errorf("OPA has not activated its bundles: %w", err)
		}
		return fmt.Errorf("OPA unreachable: %w", err)
	}
	st.Reachable = true
	raw, err := m.opa.call(ctx, http.MethodGet, "/v1/data/system/bundles", nil)
	if err != nil {
		return fmt.Errorf("OPA bundle status: %w", err)
	}
	rev, err := authzBundleRevision(raw)
	if err != nil {
		return err
	}
	st.Revision, st.HasRevision = rev, true
	return nil
}

// authzBundleRevision reads the revision of the bundle whose manifest
// roots contain "authz" from GET /v1/data/system/bundles, which answers
// {"result": {<bundle name>: {"manifest": {"revision", "roots"}, …}}}.
func authzBundleRevision(raw []byte) (int64, error) {
	var answer struct {
		Result map[string]struct {
			Manifest struct {
				Revision string   `json:"revision"`
				Roots    []string `json:"roots"`
			} `json:"manifest"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, fmt.Errorf("%w: OPA bundle status is not the expected JSON: %w", ErrBadAnswer, err)
	}
	names := make([]string, 0, len(answer.Result))
	for name := range answer.Result {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mf := answer.Result[name].Manifest
		if !slices.Contains(mf.Roots, BundleRoot) {
			continue
		}
		rev, err := strconv.ParseInt(mf.Revision, 10, 64)
		if err != nil || rev < 0 {
			return 0, fmt.Errorf("OPA bundle %q has revision %q, not a policy revision", name, clipString(mf.Revision))
		}
		return rev, nil
	}
	return 0, fmt.Errorf("OPA has no activated bundle with root %q", BundleRoot)
}

// lag compares OPA's revision with this process's: ready when OPA has it
// (or a later one), or has lacked it for less than MaxLag. Called with mu.
func (m *Monitor) lag(now time.Time, st *RemoteStatus) error {
	local := m.o.Local()
	st.Local = local
	// Revisions OPA has are no longer pending.
	i := 0
	for i < len(m.pending) && m.pending[i].revision <= st.Revision {
		i++
	}
	m.pending = m.pending[i:]
	if local <= st.Revision {
		m.pending = nil
		return nil
	}
	if n := len(m.pending); n == 0 || m.pending[n-1].revision < local {
		if n >= maxPending { // keep the oldest: it decides
			m.pending = append(m.pending[:1], m.pending[2:]...)
		}
		m.pending = append(m.pending, pendingRevision{revision: local, since: now})
	}
	oldest := m.pending[0]
	st.BehindSince = oldest.since
	if behind := now.Sub(oldest.since); behind >= m.o.MaxLag {
		return fmt.Errorf("OPA is behind: its bundle has revision %d, this process has %d; revision %d has been missing for %v (limit %v)",
			st.Revision, local, oldest.revision, behind.Round(time.Millisecond), m.o.MaxLag)
	}
	return nil
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// RoleExpectation is one has_role answer a binding write expects once the
// decision point holds the change: Principal holds (Held) or does not hold
// Role directly in Workspace.
type RoleExpectation struct {
	Principal, Workspace, Role string
	Held                       bool
}

// AwaitRoles asks dp's has_role about every expectation at once and then
// every interval, until all of them hold (nil) or ctx ends: then it
// returns ctx's error joined with the last mismatch or failure. Failed
// questions are asked again at the next round.
func AwaitRoles(ctx context.Context, dp DecisionPoint, interval time.Duration, exps []RoleExpectation) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last == nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w; last: %w", ctx.Err(), last)
		case <-t.C:
		}
		last = checkRoles(ctx, dp, exps)
		if last == nil {
			return nil
		}
		t.Reset(interval)
	}
}

// checkRoles returns nil when every expectation holds, else the first
// that does not (or the failure asking it).
func checkRoles(ctx context.Context, dp DecisionPoint, exps []RoleExpectation) error {
	for _, e := range exps {
		held, err := dp.HasRole(ctx, authz.RoleInput{PrincipalID: e.Principal, Workspace: e.Workspace, Role: e.Role})
		switch {
		case err != nil:
			return err
		case held != e.Held:
			return fmt.Errorf("has_role(%s, %s, %s) is %v, expected %v", e.Principal, e.Workspace, e.Role, held, e.Held)
		}
	}
	return nil
}
