package authn

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/ident"
)

// FuzzParseIdentityHeaders: random identity-header values never panic;
// an accepted principal has a valid id, a valid email if any, at most 100
// valid groups, at most 100 scopes none of them permission-shaped, and an
// on-behalf-of user only under a service: principal. present selects
// which headers are sent (bit i = header i; bit 7 repeats the groups
// header).
func FuzzParseIdentityHeaders(f *testing.F) {
	f.Add(uint8(0x7f), "alice", "alice@example.com", "eng, ops", "", "", "", "platform:read openid")
	f.Add(uint8(0x7f), "service:ingest", "", "", `{"id":"bob","email":"bob@example.com","groups":["g1","g2"]}`, "b@x.y", "g3", "")
	f.Add(uint8(0x09), "service:ingest", "", "", "bob", "", "", "")
	f.Add(uint8(0x41), "alice", "", "", "", "", "", "entities.read")
	f.Add(uint8(0x05), "alice", "", strings.Repeat("g,", 101), "", "", "", "")
	f.Add(uint8(0x89), "service:x", "", "a", `{"id":"service:y"}`, "", "", "")
	f.Add(uint8(0x01), "bad id", "", "", "", "", "", "")
	f.Add(uint8(0x08), "", "", "", "carol", "", "", "")
	f.Fuzz(func(t *testing.T, present uint8, id, email, groups, obo, oboEmail, oboGroups, scopes string) {
		h := http.Header{}
		for n, kv := range [][2]string{
			{HeaderPrincipalID, id}, {HeaderPrincipalEmail, email}, {HeaderPrincipalGroups, groups},
			{HeaderOnBehalfOf, obo}, {HeaderOnBehalfOfEmail, oboEmail}, {HeaderOnBehalfOfGroups, oboGroups},
			{HeaderScopes, scopes},
		} {
			if present&(1<<n) != 0 {
				h.Add(kv[0], kv[1])
			}
		}
		if present&0x80 != 0 {
			h.Add(HeaderPrincipalGroups, groups)
		}
		p, err := ParseIdentityHeaders(h)
		if err != nil {
			if p != nil {
				t.Fatalf("principal %+v returned with error %v", p, err)
			}
			return
		}
		if p == nil {
			if present&1 != 0 {
				t.Fatal("principal id header present but no principal and no error")
			}
			return
		}
		if present&1 == 0 {
			t.Fatalf("principal %+v without the principal id header", p)
		}
		if p.ID != id || !ident.ValidPrincipalID(p.ID) {
			t.Fatalf("invalid principal id %q accepted", p.ID)
		}
		if p.Email != "" && !ident.ValidEmail(p.Email) {
			t.Fatalf("invalid email %q accepted", p.Email)
		}
		checkGroups(t, p.Groups)
		if len(p.Scopes) > 100 {
			t.Fatalf("%d scopes accepted", len(p.Scopes))
		}
		for _, s := range p.Scopes {
			if s == "" || ident.PermissionShaped(s) || strings.ContainsAny(s, " \t\r\n") {
				t.Fatalf("scope %q accepted", s)
			}
		}
		if u := p.OnBehalfOf; u != nil {
			if !ident.IsService(p.ID) {
				t.Fatalf("on-behalf-of accepted for non-service principal %q", p.ID)
			}
			if !ident.ValidPrincipalID(u.ID) || ident.IsService(u.ID) || ident.IsServiceAccount(u.ID) {
				t.Fatalf("on-behalf-of user %q accepted", u.ID)
			}
			if u.Email != "" && !ident.ValidEmail(u.Email) {
				t.Fatalf("on-behalf-of email %q accepted", u.Email)
			}
			checkGroups(t, u.Groups)
		}
	})
}

func checkGroups(t *testing.T, groups []string) {
	t.Helper()
	if len(groups) > 100 {
		t.Fatalf("%d groups accepted", len(groups))
	}
	for _, g := range groups {
		if !ident.ValidPrincipalID(g) {
			t.Fatalf("group %q accepted", g)
		}
	}
}
