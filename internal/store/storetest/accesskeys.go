package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

// NewJTI returns a random valid access key id.
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ak_" + hex.EncodeToString(b[:])
}

// NewAccessKey returns a valid new key of principal (entity type USER
// unless principal starts with "service-account:"), created at the
// store's clock.
func NewAccessKey(principal string) store.AccessKey {
	et := store.AccessKeyUser
	if strings.HasPrefix(principal, "service-account:") {
		et = store.AccessKeyServiceAccount
	}
	return store.AccessKey{JTI: NewJTI(), Name: "key of " + principal, Description: "for tests", Principal: principal,
		EntityType: et, Issuer: "https://nmp.example.com", Audiences: []string{"nmp-api"}, CreatedBy: principal}
}

func mustCreateKey(t *testing.T, s store.Store, k store.AccessKey) store.AccessKey {
	t.Helper()
	got, err := s.CreateAccessKey(ctx, k)
	if err != nil {
		t.Fatalf("CreateAccessKey(%s): %v", k.JTI, err)
	}
	return got
}

func mustGetKey(t *testing.T, s store.Store, jti string) store.AccessKey {
	t.Helper()
	k, err := s.GetAccessKey(ctx, jti)
	if err != nil {
		t.Fatalf("GetAccessKey(%s): %v", jti, err)
	}
	return k
}

func jtis(keys []store.AccessKey) []string {
	return names(keys, func(k store.AccessKey) string { return k.JTI })
}

// keyNow is the time the access-key tests pass as "now": after every
// instant of the store's test clock.
var keyNow = Base.Add(24 * time.Hour)

func timeAt(t time.Time) *time.Time { return &t }

// testAccessKeyCreateGet: a created key reads back exactly as returned
// (scopes nil and empty kept apart, times in UTC microseconds), a second
// key with the same jti conflicts, and invalid keys are refused.
func testAccessKeyCreateGet(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		edit func(k *store.AccessKey)
	}{
		{"unscoped", func(k *store.AccessKey) { k.Scopes = nil }},
		{"empty scopes", func(k *store.AccessKey) { k.Scopes = []string{} }},
		{"scopes", func(k *store.AccessKey) { k.Scopes = []string{"platform:read", "platform:write"} }},
		{"no audiences", func(k *store.AccessKey) { k.Audiences = nil }},
		{"expiry and explicit creation time in another zone", func(k *store.AccessKey) {
			zone := time.FixedZone("x", 3600)
			k.CreatedAt = time.Date(2026, 3, 4, 5, 6, 7, 123456789, zone)
			k.ExpiresAt = timeAt(time.Date(2026, 4, 4, 5, 6, 7, 987654321, zone))
		}},
		{"service account", func(k *store.AccessKey) {
			k.Principal, k.EntityType = "service-account:ci", store.AccessKeyServiceAccount
		}},
		{"longest name and description", func(k *store.AccessKey) {
			k.Name, k.Description = strings.Repeat("é", 128), strings.Repeat("d", 1024)
		}},
		{"status given as ACTIVE", func(k *store.AccessKey) { k.Status = store.AccessKeyActive }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := NewAccessKey("alice")
			tc.edit(&in)
			created := mustCreateKey(t, s, in)
			if created.Status != store.AccessKeyActive || created.JTI != in.JTI || created.CreatedAt.IsZero() {
				t.Fatalf("created %+v", created)
			}
			if (in.Scopes == nil) != (created.Scopes == nil) {
				t.Fatalf("scopes %#v came back as %#v", in.Scopes, created.Scopes)
			}
			if !in.CreatedAt.IsZero() && !created.CreatedAt.Equal(in.CreatedAt.Truncate(time.Microsecond)) {
				t.Fatalf("created_at %v, want %v truncated to microseconds", created.CreatedAt, in.CreatedAt)
			}
			got := mustGetKey(t, s, in.JTI)
			equal(t, "read back", got, created)
			if (got.Scopes == nil) != (in.Scopes == nil) {
				t.Fatalf("scopes %#v read back as %#v", in.Scopes, got.Scopes)
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Fatalf("created_at in %v, want UTC", got.CreatedAt.Location())
			}
		})
	}

	first := mustCreateKey(t, s, NewAccessKey("alice"))
	dup := NewAccessKey("bob")
	dup.JTI = first.JTI
	_, err := s.CreateAccessKey(ctx, dup)
	wantCode(t, err, store.KindConflict, "already_exists")
	equal(t, "the first key after a duplicate", mustGetKey(t, s, first.JTI), first)

	_, err = s.GetAccessKey(ctx, NewJTI())
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAccessKey of an unknown jti: %v, want not found", err)
	}

	invalid := []struct {
		name string
		code string
		edit func(k *store.AccessKey)
	}{
		{"bad jti", "invalid_jti", func(k *store.AccessKey) { k.JTI = "ak_XYZ" }},
		{"uppercase jti", "invalid_jti", func(k *store.AccessKey) { k.JTI = strings.ToUpper(k.JTI) }},
		{"entity type", "invalid_entity_type", func(k *store.AccessKey) { k.EntityType = "GROUP" }},
		{"no entity type", "invalid_entity_type", func(k *store.AccessKey) { k.EntityType = "" }},
		{"suspended", "invalid_status", func(k *store.AccessKey) { k.Status = store.AccessKeySuspended }},
		{"revoked", "invalid_status", func(k *store.AccessKey) { k.Status = store.AccessKeyRevoked }},
		{"expired", "invalid_status", func(k *store.AccessKey) { k.Status = store.AccessKeyExpired }},
		{"no principal", "invalid_principal", func(k *store.AccessKey) { k.Principal = "" }},
		{"long name", "invalid_name", func(k *store.AccessKey) { k.Name = strings.Repeat("n", 129) }},
		{"long description", "invalid_description", func(k *store.AccessKey) { k.Description = strings.Repeat("é", 1025) }},
		{"revocation time", "invalid_access_key", func(k *store.AccessKey) { k.RevokedAt = timeAt(keyNow) }},
		{"grace period", "invalid_access_key", func(k *store.AccessKey) { k.GracePeriodExpiresAt = timeAt(keyNow) }},
		{"last use", "invalid_access_key", func(k *store.AccessKey) { k.LastUsedAt = timeAt(keyNow) }},
		{"successor", "invalid_access_key", func(k *store.AccessKey) { k.ReplacedBy = NewJTI() }},
	}
	for _, tc := range invalid {
		t.Run("refused "+tc.name, func(t *testing.T) {
			k := NewAccessKey("carol")
			tc.edit(&k)
			_, err := s.CreateAccessKey(ctx, k)
			wantCode(t, err, store.KindInvalid, tc.code)
			if _, err := s.GetAccessKey(ctx, k.JTI); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a refused key was stored (or the read failed): %v", err)
			}
		})
	}
}

// testAccessKeyList: newest first with ties by jti, paged with has-more,
// own keys only unless service-account keys are asked for.
func testAccessKeyList(t *testing.T, s store.Store) {
	var alice, service []string
	for i := range 3 {
		alice = append(alice, mustCreateKey(t, s, NewAccessKey("alice")).JTI)
		if i < 2 {
			service = append(service, mustCreateKey(t, s, NewAccessKey("service-account:ci")).JTI)
		}
	}
	bob := mustCreateKey(t, s, NewAccessKey("bob")).JTI
	// Two keys created at the same instant come in jti order.
	same := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tieA, tieB := NewAccessKey("dave"), NewAccessKey("dave")
	tieA.CreatedAt, tieB.CreatedAt = same, same
	if tieA.JTI > tieB.JTI {
		tieA, tieB = tieB, tieA
	}
	mustCreateKey(t, s, tieB)
	mustCreateKey(t, s, tieA)
	older := NewAccessKey("dave")
	older.CreatedAt = same.Add(-time.Second)
	mustCreateKey(t, s, older)

	rev := func(xs ...string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[len(xs)-1-i] = x
		}
		return out
	}
	tests := []struct {
		name     string
		filter   store.AccessKeyFilter
		want     []string
		wantMore bool
	}{
		{"own keys", store.AccessKeyFilter{Principal: "alice", Page: 1, PageSize: 10}, rev(alice...), false},
		{"first page", store.AccessKeyFilter{Principal: "alice", Page: 1, PageSize: 2}, rev(alice...)[:2], true},
		{"last page", store.AccessKeyFilter{Principal: "alice", Page: 2, PageSize: 2}, rev(alice...)[2:], false},
		{"exact fit has no more", store.AccessKeyFilter{Principal: "alice", Page: 1, PageSize: 3}, rev(alice...), false},
		{"past the end", store.AccessKeyFilter{Principal: "alice", Page: 3, PageSize: 2}, []string{}, false},
		{"with service accounts", store.AccessKeyFilter{Principal: "alice", IncludeServiceAccounts: true, Page: 1, PageSize: 10},
			rev(alice[0], service[0], alice[1], service[1], alice[2]), false},
		{"with service accounts, paged", store.AccessKeyFilter{Principal: "alice", IncludeServiceAccounts: true, Page: 2, PageSize: 2},
			rev(alice[0], service[0], alice[1], service[1], alice[2])[2:4], true},
		{"another principal", store.AccessKeyFilter{Principal: "bob", Page: 1, PageSize: 10}, []string{bob}, false},
		{"unknown principal", store.AccessKeyFilter{Principal: "nobody", Page: 1, PageSize: 10}, []string{}, false},
		{"service account's own keys", store.AccessKeyFilter{Principal: "service-account:ci", Page: 1, PageSize: 10}, rev(service...), false},
		{"ties by jti", store.AccessKeyFilter{Principal: "dave", Page: 1, PageSize: 10}, []string{tieA.JTI, tieB.JTI, older.JTI}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, more, err := s.ListAccessKeys(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "jtis", jtis(keys), tc.want)
			if more != tc.wantMore {
				t.Fatalf("has more %v, want %v", more, tc.wantMore)
			}
		})
	}
	for _, f := range []store.AccessKeyFilter{{Principal: "alice", Page: 0, PageSize: 1}, {Principal: "alice", Page: 1, PageSize: 0}} {
		_, _, err := s.ListAccessKeys(ctx, f)
		wantCode(t, err, store.KindInvalid, "invalid_page")
	}
	// A listed key is the stored key.
	keys, _, err := s.ListAccessKeys(ctx, store.AccessKeyFilter{Principal: "bob", Page: 1, PageSize: 1})
	if err != nil || len(keys) != 1 {
		t.Fatalf("list bob: %v %v", keys, err)
	}
	equal(t, "listed key", keys[0], mustGetKey(t, s, bob))
}

// keyIn creates a key and brings it to status st the way the API would.
func keyIn(t *testing.T, s store.Store, st store.AccessKeyStatus) store.AccessKey {
	t.Helper()
	k := mustCreateKey(t, s, NewAccessKey("alice"))
	switch st {
	case store.AccessKeyActive:
		return k
	case store.AccessKeyRotating:
		prev, _, err := s.RotateAccessKey(ctx, k.JTI, keyNow.Add(time.Hour), NewAccessKey("alice"), keyNow)
		if err != nil {
			t.Fatalf("rotate: %v", err)
		}
		return prev
	}
	got, changed, err := s.SetAccessKeyStatus(ctx, k.JTI, st, keyNow)
	if err != nil || !changed {
		t.Fatalf("set %s: changed %v, %v", st, changed, err)
	}
	return got
}

// testAccessKeyTransitions: every (from, to) pair: allowed moves change
// and are stored, same status is a no-op, everything else is refused
// with ErrInvalidState and leaves the key as it was. REVOKED is final.
func testAccessKeyTransitions(t *testing.T, s store.Store) {
	const (
		changed   = "changed"
		unchanged = "unchanged"
		refused   = "refused"
	)
	a, su, ro, re := store.AccessKeyActive, store.AccessKeySuspended, store.AccessKeyRotating, store.AccessKeyRevoked
	tests := []struct {
		from, to store.AccessKeyStatus
		want     string
	}{
		{a, a, unchanged}, {a, su, changed}, {a, ro, refused}, {a, re, changed},
		{su, a, changed}, {su, su, unchanged}, {su, ro, refused}, {su, re, changed},
		{ro, a, refused}, {ro, su, refused}, {ro, ro, unchanged}, {ro, re, changed},
		{re, a, refused}, {re, su, refused}, {re, ro, refused}, {re, re, unchanged},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s to %s", tc.from, tc.to), func(t *testing.T) {
			before := keyIn(t, s, tc.from)
			now := keyNow.Add(time.Minute + 123456789)
			got, ch, err := s.SetAccessKeyStatus(ctx, before.JTI, tc.to, now)
			stored := mustGetKey(t, s, before.JTI)
			switch tc.want {
			case refused:
				if !errors.Is(err, store.ErrInvalidState) {
					t.Fatalf("got %v, want ErrInvalidState", err)
				}
				wantCode(t, err, store.KindConflict, "invalid_state")
				equal(t, "refused key", stored, before)
				return
			case unchanged:
				if err != nil || ch {
					t.Fatalf("changed %v, %v; want unchanged", ch, err)
				}
				equal(t, "returned key", got, before)
				equal(t, "stored key", stored, before)
				return
			}
			if err != nil || !ch {
				t.Fatalf("changed %v, %v; want changed", ch, err)
			}
			equal(t, "returned key", got, stored)
			want := before
			want.Status = tc.to
			if tc.to == re {
				want.RevokedAt = timeAt(now.Truncate(time.Microsecond))
			}
			equal(t, "stored key", stored, want)
		})
	}

	k := keyIn(t, s, a)
	for _, to := range []store.AccessKeyStatus{store.AccessKeyExpired, "", "active", "DELETED"} {
		_, _, err := s.SetAccessKeyStatus(ctx, k.JTI, to, keyNow)
		wantCode(t, err, store.KindInvalid, "invalid_status")
	}
	equal(t, "key after invalid targets", mustGetKey(t, s, k.JTI), k)
	_, _, err := s.SetAccessKeyStatus(ctx, NewJTI(), re, keyNow)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown jti: %v, want not found", err)
	}

	// Revocation is final: the key can neither come back nor be rotated,
	// and a second revocation keeps the first time.
	r := keyIn(t, s, re)
	for _, to := range []store.AccessKeyStatus{a, su} {
		if _, _, err := s.SetAccessKeyStatus(ctx, r.JTI, to, keyNow.Add(time.Hour)); !errors.Is(err, store.ErrInvalidState) {
			t.Fatalf("revoked → %s: %v", to, err)
		}
	}
	if _, _, err := s.RotateAccessKey(ctx, r.JTI, keyNow.Add(2*time.Hour), NewAccessKey("alice"), keyNow.Add(time.Hour)); !errors.Is(err, store.ErrInvalidState) {
		t.Fatalf("rotating a revoked key: %v", err)
	}
	again, ch, err := s.SetAccessKeyStatus(ctx, r.JTI, re, keyNow.Add(time.Hour))
	if err != nil || ch || !again.RevokedAt.Equal(*r.RevokedAt) {
		t.Fatalf("second revocation: changed %v, revoked at %v (first %v), %v", ch, again.RevokedAt, r.RevokedAt, err)
	}
	equal(t, "revoked key", mustGetKey(t, s, r.JTI), r)
}

// testAccessKeyUnsuspendExpired: unsuspending a key that has expired
// changes nothing (it reports EXPIRED); before expiry it works.
func testAccessKeyUnsuspendExpired(t *testing.T, s store.Store) {
	in := NewAccessKey("alice")
	in.ExpiresAt = timeAt(keyNow.Add(time.Hour))
	k := mustCreateKey(t, s, in)
	susp, ch, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeySuspended, keyNow)
	if err != nil || !ch {
		t.Fatalf("suspend: %v %v", ch, err)
	}
	later := keyNow.Add(time.Hour) // the expiry instant itself
	got, ch, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyActive, later)
	if err != nil || ch {
		t.Fatalf("unsuspend an expired key: changed %v, %v; want unchanged", ch, err)
	}
	if got.StatusAt(later) != store.AccessKeyExpired || got.Status != store.AccessKeySuspended {
		t.Fatalf("unsuspended expired key reports %s (stored %s), want EXPIRED (SUSPENDED)", got.StatusAt(later), got.Status)
	}
	equal(t, "stored key", mustGetKey(t, s, k.JTI), susp)
	// A moment before expiry the same call unsuspends.
	got, ch, err = s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyActive, later.Add(-time.Microsecond))
	if err != nil || !ch || got.Status != store.AccessKeyActive {
		t.Fatalf("unsuspend before expiry: %+v changed %v, %v", got, ch, err)
	}
}

// testAccessKeyRotate: a rotation moves the key to ROTATING with its
// grace and successor and creates the successor, both or neither.
func testAccessKeyRotate(t *testing.T, s store.Store) {
	k := mustCreateKey(t, s, NewAccessKey("alice"))
	next := NewAccessKey("alice")
	next.Scopes = []string{"platform:read"}
	grace := keyNow.Add(90*time.Minute + 7)
	prev, created, err := s.RotateAccessKey(ctx, k.JTI, grace, next, keyNow)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.Status, want.ReplacedBy = store.AccessKeyRotating, next.JTI
	want.GracePeriodExpiresAt = timeAt(grace.Truncate(time.Microsecond))
	equal(t, "previous key", prev, want)
	equal(t, "stored previous key", mustGetKey(t, s, k.JTI), want)
	if created.JTI != next.JTI || created.Status != store.AccessKeyActive || created.Scopes[0] != "platform:read" {
		t.Fatalf("created %+v", created)
	}
	equal(t, "stored new key", mustGetKey(t, s, next.JTI), created)
	if !prev.UsableAt(grace.Add(-time.Second)) || prev.UsableAt(grace) {
		t.Fatal("the previous key must be usable until its grace ends, and not after")
	}

	// Refusals leave both keys as they were.
	expiring := NewAccessKey("alice")
	expiring.ExpiresAt = timeAt(keyNow)
	expired := mustCreateKey(t, s, expiring)
	dup := NewAccessKey("alice")
	dup.JTI = created.JTI // already exists
	badNext := NewAccessKey("alice")
	badNext.EntityType = "ROBOT"
	fresh := mustCreateKey(t, s, NewAccessKey("alice"))
	self := NewAccessKey("alice")
	self.JTI = fresh.JTI
	tests := []struct {
		name  string
		jti   string
		next  store.AccessKey
		check func(t *testing.T, err error)
	}{
		{"rotating key", k.JTI, NewAccessKey("alice"), wantState},
		{"suspended key", keyIn(t, s, store.AccessKeySuspended).JTI, NewAccessKey("alice"), wantState},
		{"revoked key", keyIn(t, s, store.AccessKeyRevoked).JTI, NewAccessKey("alice"), wantState},
		{"expired key", expired.JTI, NewAccessKey("alice"), wantState},
		{"successor jti exists", fresh.JTI, dup, func(t *testing.T, err error) { wantCode(t, err, store.KindConflict, "already_exists") }},
		{"successor is the key itself", fresh.JTI, self, func(t *testing.T, err error) { wantCode(t, err, store.KindConflict, "already_exists") }},
		{"invalid successor", fresh.JTI, badNext, func(t *testing.T, err error) { wantCode(t, err, store.KindInvalid, "invalid_entity_type") }},
		{"unknown key", NewJTI(), NewAccessKey("alice"), func(t *testing.T, err error) {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("got %v, want not found", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeErr := s.GetAccessKey(ctx, tc.jti)
			nextBefore, nextErr := s.GetAccessKey(ctx, tc.next.JTI)
			_, _, err := s.RotateAccessKey(ctx, tc.jti, grace, tc.next, keyNow)
			tc.check(t, err)
			after, afterErr := s.GetAccessKey(ctx, tc.jti)
			equal(t, "key after a refused rotation", after, before)
			equal(t, "lookup error", fmt.Sprint(afterErr), fmt.Sprint(beforeErr))
			nextAfter, nextAfterErr := s.GetAccessKey(ctx, tc.next.JTI)
			equal(t, "successor after a refused rotation", nextAfter, nextBefore)
			equal(t, "successor lookup error", fmt.Sprint(nextAfterErr), fmt.Sprint(nextErr))
		})
	}
}

func wantState(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrInvalidState) {
		t.Fatalf("got %v, want ErrInvalidState", err)
	}
}

// testAccessKeyRotateConcurrent: concurrent rotations of one key: exactly
// one wins, the others see it ROTATING (the row is locked while read).
func testAccessKeyRotateConcurrent(t *testing.T, s store.Store) {
	k := mustCreateKey(t, s, NewAccessKey("alice"))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	nexts := make([]string, n)
	for i := range n {
		next := NewAccessKey("alice")
		nexts[i] = next.JTI
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.RotateAccessKey(ctx, k.JTI, keyNow.Add(time.Hour), next, keyNow)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won == -1:
			won = i
		case err == nil:
			t.Fatalf("two rotations of one key succeeded (%d and %d)", won, i)
		case !errors.Is(err, store.ErrInvalidState):
			t.Fatalf("rotation %d: %v, want ErrInvalidState", i, err)
		}
	}
	if won == -1 {
		t.Fatal("no rotation succeeded")
	}
	if got := mustGetKey(t, s, k.JTI); got.ReplacedBy != nexts[won] {
		t.Fatalf("replaced by %s, want the winner %s", got.ReplacedBy, nexts[won])
	}
	for i, jti := range nexts {
		if _, err := s.GetAccessKey(ctx, jti); (err == nil) != (i == won) {
			t.Fatalf("successor %d exists: %v (winner %d)", i, err, won)
		}
	}
}

// testAccessKeyUse: a batch moves last_used_at forward only, keeps the
// latest of duplicates, and ignores unknown keys.
func testAccessKeyUse(t *testing.T, s store.Store) {
	k1 := mustCreateKey(t, s, NewAccessKey("alice"))
	k2 := mustCreateKey(t, s, NewAccessKey("bob"))
	k3 := mustCreateKey(t, s, NewAccessKey("carol"))
	t1 := keyNow.Add(time.Minute + 1500) // sub-microsecond part is dropped
	t2 := keyNow.Add(2 * time.Minute)
	if err := s.RecordAccessKeyUse(ctx, []store.AccessKeyUse{
		{JTI: k1.JTI, At: t1}, {JTI: k2.JTI, At: t2}, {JTI: k1.JTI, At: keyNow}, {JTI: NewJTI(), At: t2}, {JTI: "not-a-jti", At: t2},
	}); err != nil {
		t.Fatal(err)
	}
	lastUsed := func(jti string) *time.Time { return mustGetKey(t, s, jti).LastUsedAt }
	equal(t, "k1 last used (latest of the batch)", lastUsed(k1.JTI), timeAt(t1.Truncate(time.Microsecond)))
	equal(t, "k2 last used", lastUsed(k2.JTI), timeAt(t2))
	if lastUsed(k3.JTI) != nil {
		t.Fatal("an unused key has a last use")
	}
	// An older time (a delayed batch, another replica) never moves it back.
	if err := s.RecordAccessKeyUse(ctx, []store.AccessKeyUse{{JTI: k1.JTI, At: keyNow}, {JTI: k2.JTI, At: t2.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	equal(t, "k1 after an older use", lastUsed(k1.JTI), timeAt(t1.Truncate(time.Microsecond)))
	equal(t, "k2 after a newer use", lastUsed(k2.JTI), timeAt(t2.Add(time.Second)))
	if err := s.RecordAccessKeyUse(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	// Uses change nothing else.
	want := k1
	want.LastUsedAt = timeAt(t1.Truncate(time.Microsecond))
	equal(t, "k1", mustGetKey(t, s, k1.JTI), want)
}

// testAccessKeyFeed: status changes, revocations and rotations reach a
// watcher (AccessKey = jti) by the time the write returns, without moving
// the policy revision; creations, uses, no-ops and refused writes publish
// nothing for the key.
func testAccessKeyFeed(t *testing.T, s store.Store) {
	rec := Watch(t, s)
	rev := must[int64](t)(s.PolicyRevision(ctx))
	announced := func(jti string) int {
		n := 0
		for _, ev := range rec.Events() {
			if ev.AccessKey == jti {
				n++
				if ev.Revision != 0 || ev.Resync || ev.Err != nil {
					t.Fatalf("an access-key event carries more: %+v", ev)
				}
			}
		}
		return n
	}
	k := mustCreateKey(t, s, NewAccessKey("alice"))
	if err := s.RecordAccessKeyUse(ctx, []store.AccessKeyUse{{JTI: k.JTI, At: keyNow}}); err != nil {
		t.Fatal(err)
	}
	if _, ch, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyActive, keyNow); err != nil || ch {
		t.Fatalf("no-op: %v %v", ch, err)
	}
	if _, _, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyRotating, keyNow); !errors.Is(err, store.ErrInvalidState) {
		t.Fatalf("refused: %v", err)
	}
	if n := announced(k.JTI); n != 0 {
		t.Fatalf("create, use, no-op and refusal announced the key %d times", n)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"suspend", func() error {
			_, _, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeySuspended, keyNow)
			return err
		}},
		{"unsuspend", func() error { _, _, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyActive, keyNow); return err }},
		{"rotate", func() error {
			_, _, err := s.RotateAccessKey(ctx, k.JTI, keyNow.Add(time.Hour), NewAccessKey("alice"), keyNow)
			return err
		}},
		{"revoke", func() error {
			_, _, err := s.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyRevoked, keyNow)
			return err
		}},
	}
	for _, st := range steps {
		before := announced(k.JTI)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		// Published synchronously after commit: no waiting needed.
		if announced(k.JTI) <= before {
			t.Fatalf("%s not announced when it returned; events %+v", st.name, rec.Events())
		}
	}
	if got := must[int64](t)(s.PolicyRevision(ctx)); got != rev {
		t.Fatalf("access-key writes moved the policy revision %d → %d", rev, got)
	}
}
