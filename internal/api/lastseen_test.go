package api_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
)

// movingClock is the server's clock, moved by the test; it starts at the
// real time so that tokens minted by a test issuer are valid.
type movingClock struct {
	start  time.Time
	offset atomic.Int64
}

func newMovingClock() *movingClock { return &movingClock{start: time.Now()} }

func (c *movingClock) Now() time.Time          { return c.start.Add(time.Duration(c.offset.Load())) }
func (c *movingClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// flushLastSeen writes the server's pending last-seen times now (the
// event the test waits for instead of the periodic write).
func flushLastSeen(t *testing.T, srv *servertest.Server) {
	t.Helper()
	if err := srv.Server.LastSeen().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// lastSeenOf maps each principal of a members or role-bindings list to
// its last_seen_at (nil for null).
func lastSeenOf(t *testing.T, list map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, it := range list["data"].([]any) {
		m := it.(map[string]any)
		v, ok := m["last_seen_at"]
		if !ok {
			t.Fatalf("no last_seen_at in %v", m)
		}
		out[m["principal"].(string)] = v
	}
	return out
}

func wantLastSeen(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for p, w := range want {
		if got[p] != w {
			t.Fatalf("%s: %s last_seen_at = %v, want %v (all: %v)", what, p, got[p], w, got)
		}
	}
}

func stamp(t time.Time) string { return store.NewTimestamp(t).String() }

// TestLastSeenThroughTheAPI: a request moves its caller's last_seen_at,
// by id and by email, once the recorder has written; requests inside the
// window do not, the first one after it does; a group moves when a member
// of it calls; "*" stays null;
// anonymous requests and refused credentials record nothing.
func TestLastSeenThroughTheAPI(t *testing.T) {
	clk := newMovingClock()
	srv := servertest.Start(t, devMode, server.WithClock(clk.Now))
	alice := clk.Now()
	as(t, srv, "alice", "POST", ws, `{"name": "ml-team"}`, 201, "") // alice becomes Admin
	for _, p := range []string{"bob@example.com", "*", "eng"} {
		as(t, srv, "alice", "POST", ws+"/ml-team/members", `{"principal": "`+p+`", "roles": ["Viewer"]}`, 201, "")
	}
	members := ws + "/ml-team/members"
	nulls := map[string]any{"alice": nil, "bob@example.com": nil, "*": nil, "eng": nil}
	wantLastSeen(t, "before any write", lastSeenOf(t, as(t, srv, root, "GET", members, "", 200, "")), nulls)

	flushLastSeen(t, srv)
	wantLastSeen(t, "after the write", lastSeenOf(t, as(t, srv, root, "GET", members, "", 200, "")),
		map[string]any{"alice": stamp(alice), "bob@example.com": nil, "*": nil, "eng": nil})

	// bob calls with an id, his email and a group: the member keyed by
	// his email moves, and so does the group's binding.
	clk.Advance(time.Minute)
	bob := clk.Now()
	as(t, srv, "u-bob", "GET", ws+"/ml-team", "", 200, "", "X-NMP-Principal-Email", "bob@example.com", "X-NMP-Principal-Groups", "eng")
	// Refused credentials and anonymous requests record nothing.
	as(t, srv, "mallory", "GET", ws, "", 400, "invalid_header", "X-NMP-Principal-Email", "not-an-email")
	as(t, srv, "", "GET", ws, "", 401, "unauthorized")
	// alice again inside her window: not recorded again.
	as(t, srv, "alice", "GET", ws+"/ml-team", "", 200, "")
	flushLastSeen(t, srv)
	wantLastSeen(t, "after bob's request", lastSeenOf(t, as(t, srv, root, "GET", members, "", 200, "")),
		map[string]any{"alice": stamp(alice), "bob@example.com": stamp(bob), "*": nil, "eng": stamp(bob)})
	if got, err := srv.Store().LastSeen(context.Background(), []string{"mallory", "eng", "u-bob"}); err != nil ||
		len(got) != 2 || !got["u-bob"].Equal(store.NewTimestamp(bob).Time) || !got["eng"].Equal(store.NewTimestamp(bob).Time) {
		t.Fatalf("recorded principals: %v, %v; want u-bob and eng", got, err)
	}

	// After the window, alice's next request moves her time.
	clk.Advance(5 * time.Minute)
	alice2 := clk.Now()
	as(t, srv, "alice", "GET", ws+"/ml-team", "", 200, "")
	flushLastSeen(t, srv)
	wantLastSeen(t, "after alice's window", lastSeenOf(t, as(t, srv, root, "GET", members, "", 200, "")),
		map[string]any{"alice": stamp(alice2), "bob@example.com": stamp(bob), "*": nil, "eng": stamp(bob)})

	// Role bindings carry the same field, in the list and one by one.
	bindings := as(t, srv, root, "GET", rb+"?filter[workspace]=ml-team", "", 200, "")
	wantLastSeen(t, "role bindings", lastSeenOf(t, bindings),
		map[string]any{"alice": stamp(alice2), "bob@example.com": stamp(bob), "*": nil, "eng": stamp(bob)})
	b := as(t, srv, root, "GET", rb+"/"+rbName("bob@example.com", "ml-team", "Viewer"), "", 200, "")
	if b["last_seen_at"] != stamp(bob) || b["principal"] != "bob@example.com" || b["role"] != "Viewer" {
		t.Fatalf("binding %v", b)
	}
	// A write answers with the member's time too.
	m := as(t, srv, "alice", "PUT", members+"/bob@example.com", `{"roles": ["Editor"]}`, 200, "")
	if m["last_seen_at"] != stamp(bob) || len(m) != 5 {
		t.Fatalf("updated member %v", m)
	}
}

// TestLastSeenThroughTheGateway: a gateway callout with a valid token
// records the token's subject and email; a refused token records nothing.
func TestLastSeenThroughTheGateway(t *testing.T) {
	iss := oidctest.New(t)
	clk := newMovingClock()
	srv := servertest.Start(t, withOIDC(iss), server.WithClock(clk.Now))
	carol := iss.Mint(t, oidctest.Claims{Subject: "u-carol", Email: "carol@example.com"})
	if status, _, body := call(t, "GET", srv.URL+"/apis/auth/authenticate/anything", "", bearer(carol)...); status != 200 {
		t.Fatalf("callout: %d %s", status, body)
	}
	expired := iss.Mint(t, oidctest.Claims{Subject: "u-dave", Email: "dave@example.com", TTL: -time.Hour})
	if status, _, _ := call(t, "GET", srv.URL+"/apis/auth/authenticate/anything", "", bearer(expired)...); status != 401 {
		t.Fatalf("expired token: %d", status)
	}
	flushLastSeen(t, srv)
	got, err := srv.Store().LastSeen(context.Background(), []string{"u-carol", "carol@example.com", "u-dave", "dave@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := store.NewTimestamp(clk.Now())
	if len(got) != 2 || !got["u-carol"].Equal(want.Time) || !got["carol@example.com"].Equal(want.Time) {
		t.Fatalf("recorded %v, want u-carol and carol@example.com at %s", got, want)
	}
}

// TestLastSeenDisabled: auth.last_seen_interval_seconds 0 records nothing.
func TestLastSeenDisabled(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		devMode(c)
		c.Auth.LastSeenIntervalSeconds = 0
	})
	as(t, srv, "alice", "POST", ws, `{"name": "ml-team"}`, 201, "")
	flushLastSeen(t, srv)
	wantLastSeen(t, "disabled", lastSeenOf(t, as(t, srv, "alice", "GET", ws+"/ml-team/members", "", 200, "")),
		map[string]any{"alice": nil})
}
