package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

const auditPath = "/apis/auth/v2/audit-events"

// auditEvent is an event as the API shows it.
type auditEvent = client.AuditEvent

// auditList reads one page of audit events as c.
func auditList(t *testing.T, base string, c caller, query string) (int, []auditEvent, bool, string) {
	t.Helper()
	r := sendAs(t, "GET", base+auditPath+query, c, "")
	var page struct {
		Data    []auditEvent `json:"data"`
		HasMore bool         `json:"has_more"`
	}
	if r.status == 200 {
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatalf("audit events: %v: %s", err, r.body)
		}
	}
	return r.status, page.Data, page.HasMore, r.body
}

// TestAuditTrailThroughAPI: every kind of access change made through the
// HTTP API appears in the audit trail with its caller and the request's
// X-Request-Id, and no token; a workspace Admin reads only its
// workspace's events, others are refused, a PlatformAdmin reads all.
func TestAuditTrailThroughAPI(t *testing.T) {
	srv := servertest.Start(t, keysMode)
	srv.WaitReady(t)
	base := srv.URL
	alice, root := as("alice@example.com"), as("root@example.com")
	const ws = "/apis/entities/v2/workspaces"
	const rbPath = "/apis/auth/v2/iam/role-bindings"

	type change struct {
		who                 caller
		method, path, body  string
		status              int
		action, wsp, target string
		before, after       string // substrings the state must contain ("" : null)
	}
	var tokens []string
	run := func(id string, c change) map[string]any {
		t.Helper()
		c.who.requestID = id
		st, m, raw := do(t, base, c.who, c.method, c.path, c.body)
		if st != c.status {
			t.Fatalf("%s %s: %d %.300s", c.method, c.path, st, raw)
		}
		if tok, ok := m["token"].(string); ok {
			tokens = append(tokens, tok)
		}
		return m
	}
	// want checks the events of request id (oldest first).
	want := func(id string, who string, evs ...change) {
		t.Helper()
		_, all, _, _ := auditList(t, base, root, "?page_size=100")
		var got []auditEvent
		for _, e := range all {
			if e.RequestID != nil && *e.RequestID == id {
				got = append([]auditEvent{e}, got...)
			}
		}
		if len(got) != len(evs) {
			t.Fatalf("request %s: %d audit events, want %d: %+v", id, len(got), len(evs), got)
		}
		for i, w := range evs {
			e := got[i]
			wsp := ""
			if e.Workspace != nil {
				wsp = *e.Workspace
			}
			if e.Actor != who || e.Action != w.action || wsp != w.wsp || (w.target != "" && e.Target != w.target) {
				t.Fatalf("request %s event %d: %s by %s in %q on %s, want %s by %s in %q on %s",
					id, i, e.Action, e.Actor, wsp, e.Target, w.action, who, w.wsp, w.target)
			}
			for _, s := range []struct {
				got        json.RawMessage
				want, what string
			}{{e.Before, w.before, "before"}, {e.After, w.after, "after"}} {
				if (s.want == "") != (string(s.got) == "null" || len(s.got) == 0) || !strings.Contains(string(s.got), s.want) {
					t.Fatalf("request %s event %d (%s): %s is %s, want one containing %q", id, i, e.Action, s.what, s.got, s.want)
				}
			}
		}
	}

	run("r-ws", change{who: alice, method: "POST", path: ws, body: `{"name": "ml-team", "description": "ML"}`, status: 201})
	want("r-ws", "alice@example.com",
		change{action: "workspace.create", wsp: "ml-team", target: "ml-team", after: `"description":"ML"`},
		change{action: "member.create", wsp: "ml-team", target: "alice@example.com", after: `["Admin"]`})
	run("r-add", change{who: alice, method: "POST", path: ws + "/ml-team/members", body: `{"principal": "bob@example.com", "roles": ["Viewer"]}`, status: 201})
	want("r-add", "alice@example.com", change{action: "member.create", wsp: "ml-team", target: "bob@example.com", after: `["Viewer"]`})
	run("r-upd", change{who: alice, method: "PUT", path: ws + "/ml-team/members/bob@example.com", body: `{"roles": ["Editor"]}`, status: 200})
	want("r-upd", "alice@example.com", change{action: "member.update", wsp: "ml-team", target: "bob@example.com", before: `["Viewer"]`, after: `["Editor"]`})
	run("r-del", change{who: alice, method: "DELETE", path: ws + "/ml-team/members/bob@example.com", status: 200})
	want("r-del", "alice@example.com", change{action: "member.delete", wsp: "ml-team", target: "bob@example.com", before: `["Editor"]`})
	// A refused change (the last Admin) records nothing.
	run("r-last", change{who: alice, method: "DELETE", path: ws + "/ml-team/members/alice@example.com", status: 409})
	want("r-last", "alice@example.com")

	run("r-rb", change{who: root, method: "POST", path: rbPath, body: `{"principal": "carol@example.com", "workspace": "ml-team", "role": "Viewer"}`, status: 201})
	want("r-rb", "root@example.com", change{action: "role_binding.create", wsp: "ml-team", after: `"principal":"carol@example.com"`})
	_, all, _, _ := auditList(t, base, root, "?principal=root@example.com&page_size=1")
	if len(all) != 1 || all[0].Action != "role_binding.create" {
		t.Fatalf("principal filter: %+v", all)
	}
	run("r-rbdel", change{who: root, method: "DELETE", path: rbPath + "/" + url.PathEscape(all[0].Target), status: 200})
	want("r-rbdel", "root@example.com", change{action: "role_binding.delete", wsp: "ml-team", target: all[0].Target, before: `"role":"Viewer"`})

	m := run("r-key", change{who: alice, method: "POST", path: keysPath, body: `{"name": "ci", "scopes": ["platform:read"]}`, status: 201})
	jti, _ := m["jti"].(string)
	want("r-key", "alice@example.com", change{action: "access_key.create", target: jti, after: `"scopes":["platform:read"]`})
	run("r-susp", change{who: alice, method: "POST", path: keysPath + "/" + jti + "/suspend", status: 200})
	want("r-susp", "alice@example.com", change{action: "access_key.suspend", target: jti, before: `"ACTIVE"`, after: `"SUSPENDED"`})
	run("r-unsusp", change{who: alice, method: "POST", path: keysPath + "/" + jti + "/unsuspend", status: 200})
	want("r-unsusp", "alice@example.com", change{action: "access_key.unsuspend", target: jti, before: `"SUSPENDED"`, after: `"ACTIVE"`})
	m = run("r-rot", change{who: alice, method: "POST", path: keysPath + "/" + jti + "/rotate", body: `{}`, status: 200})
	nk, _ := m["new_key"].(map[string]any)
	next, _ := nk["jti"].(string)
	if tok, ok := nk["token"].(string); ok {
		tokens = append(tokens, tok)
	}
	want("r-rot", "alice@example.com",
		change{action: "access_key.rotate", target: jti, before: `"ACTIVE"`, after: `"replaced_by":"` + next + `"`},
		change{action: "access_key.create", target: next, after: `"ACTIVE"`})
	run("r-rev", change{who: alice, method: "DELETE", path: keysPath + "/" + next, status: 200})
	want("r-rev", "alice@example.com", change{action: "access_key.revoke", target: next, before: `"ACTIVE"`, after: `"REVOKED"`})

	run("r-ws2", change{who: alice, method: "POST", path: ws, body: `{"name": "scratch"}`, status: 201})
	run("r-ws2del", change{who: alice, method: "DELETE", path: ws + "/scratch", status: 200})
	want("r-ws2del", "alice@example.com", change{action: "workspace.delete", wsp: "scratch", target: "scratch", before: `"revoked_bindings"`})

	t.Run("no token in the trail", func(t *testing.T) {
		_, _, _, body := auditList(t, base, root, "?page_size=100")
		if len(tokens) != 2 {
			t.Fatalf("%d tokens minted, want 2", len(tokens))
		}
		for _, tok := range tokens {
			if strings.Contains(body, tok) || strings.Contains(body, strings.Split(tok, ".")[1]) {
				t.Fatal("the audit trail holds a minted token")
			}
		}
	})
	t.Run("a workspace Admin reads its workspace only", func(t *testing.T) {
		st, evs, _, raw := auditList(t, base, alice, "?workspace=ml-team")
		if st != 200 || len(evs) == 0 {
			t.Fatalf("%d %s", st, raw)
		}
		for _, e := range evs {
			if e.Workspace == nil || *e.Workspace != "ml-team" {
				t.Fatalf("alice sees an event of %v", e.Workspace)
			}
		}
		for _, q := range []string{"", "?workspace=default", "?workspace=scratch", "?principal=alice@example.com"} {
			if st, _, _, raw := auditList(t, base, alice, q); st != 403 || !strings.Contains(raw, "audit") {
				t.Fatalf("alice %q: %d %s", q, st, raw)
			}
		}
	})
	t.Run("a member who is not Admin is refused", func(t *testing.T) {
		run("r-carol", change{who: alice, method: "POST", path: ws + "/ml-team/members", body: `{"principal": "carol@example.com", "roles": ["Editor"]}`, status: 201})
		if st, _, _, raw := auditList(t, base, as("carol@example.com"), "?workspace=ml-team"); st != 403 || !strings.Contains(raw, "workspaces.audit.read") {
			t.Fatalf("carol: %d %s", st, raw)
		}
	})
	t.Run("PlatformAdmin reads everything", func(t *testing.T) {
		st, evs, _, raw := auditList(t, base, root, "?page_size=100")
		if st != 200 {
			t.Fatalf("%d %s", st, raw)
		}
		seen := map[string]bool{}
		for _, e := range evs {
			seen[e.Action] = true
			if e.Workspace != nil {
				seen["in "+*e.Workspace] = true
			}
		}
		for _, k := range []string{"access_key.create", "role_binding.create", "workspace.delete", "in system", "in default", "in ml-team", "in scratch"} {
			if !seen[k] {
				t.Fatalf("root does not see %s: %s", k, raw)
			}
		}
		st, evs, more, raw := auditList(t, base, root, "?page_size=2&page=1")
		if st != 200 || len(evs) != 2 || !more {
			t.Fatalf("paging: %d %s", st, raw)
		}
	})
	t.Run("bad parameters are 422", func(t *testing.T) {
		for _, q := range []string{"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?page_size=101", "?page=0", "?colour=red"} {
			if st, _, _, raw := auditList(t, base, root, q); st != 422 {
				t.Fatalf("%s: %d %s", q, st, raw)
			}
		}
		if st, evs, _, raw := auditList(t, base, root, "?since=2999-01-01T00:00:00Z"); st != 200 || len(evs) != 0 {
			t.Fatalf("since in the future: %d %s", st, raw)
		}
	})
}
