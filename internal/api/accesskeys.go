package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/accesskey"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// The access-key API (/apis/auth/v2/access-keys): platform-minted bearer
// tokens for automation. The decision point admits any principal (the
// endpoint table's callers: [principal]); these handlers add who may do
// what with which key: callers manage their own keys, a human
// PlatformAdmin also service-account keys; service principals, service
// accounts and access-key requests cannot mint keys.

// AccessKeysPath is the collection's path.
const AccessKeysPath = "/apis/auth/v2/access-keys"

// AccessKeyOptions are what the access-key API needs besides the store.
// A nil Minter means access keys are disabled: every route answers 404
// access_keys_disabled.
type AccessKeyOptions struct {
	Minter *accesskey.Minter
	Policy accesskey.Policy
	// Issuer and Audience are the minted tokens' iss and aud, shown in
	// the keys' metadata.
	Issuer   string
	Audience string
	// Invalidate forgets what this process cached about a key whose state
	// changed (the change feed does it too; this makes it immediate).
	Invalidate func(jti string)
}

const (
	maxKeyName        = 128
	maxKeyScopes      = 64
	maxAccessKeysPage = 100
)

var reServiceAccountID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._+/-]{0,239}$`)

func (s *Server) accessKeyRoutes() {
	s.handle("GET "+AccessKeysPath, s.listAccessKeys)
	s.handle("POST "+AccessKeysPath, s.createAccessKey)
	s.handle("DELETE "+AccessKeysPath+"/{jti}", s.revokeAccessKey)
	s.handle("POST "+AccessKeysPath+"/{jti}/suspend", s.suspendAccessKey)
	s.handle("POST "+AccessKeysPath+"/{jti}/unsuspend", s.unsuspendAccessKey)
	s.handle("POST "+AccessKeysPath+"/{jti}/rotate", s.rotateAccessKey)
}

// accessKeyView is a key's metadata as the API shows it; never the token.
type accessKeyView struct {
	JTI         string `json:"jti"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Principal   string `json:"principal"`
	EntityType  string `json:"entity_type"`
	Status      string `json:"status"`
	// Scopes limit the key; null: the principal's full rights.
	Scopes               []string         `json:"scopes"`
	Issuer               string           `json:"issuer"`
	Audiences            []string         `json:"audiences"`
	CreatedAt            store.Timestamp  `json:"created_at"`
	ExpiresAt            *store.Timestamp `json:"expires_at"`
	GracePeriodExpiresAt *store.Timestamp `json:"grace_period_expires_at"`
	LastUsedAt           *store.Timestamp `json:"last_used_at"`
}

// mintedKeyView is a key's metadata with its token, shown once.
type mintedKeyView struct {
	accessKeyView
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
}

func timestampOf(t *time.Time) *store.Timestamp {
	if t == nil {
		return nil
	}
	ts := store.NewTimestamp(*t)
	return &ts
}

func (s *Server) keyView(k store.AccessKey) accessKeyView {
	aud := k.Audiences
	if aud == nil {
		aud = []string{}
	}
	return accessKeyView{JTI: k.JTI, Name: k.Name, Description: k.Description, Principal: k.Principal,
		EntityType: k.EntityType, Status: string(k.StatusAt(s.now())), Scopes: k.Scopes, Issuer: k.Issuer, Audiences: aud,
		CreatedAt: store.NewTimestamp(k.CreatedAt), ExpiresAt: timestampOf(k.ExpiresAt),
		GracePeriodExpiresAt: timestampOf(k.GracePeriodExpiresAt), LastUsedAt: timestampOf(k.LastUsedAt)}
}

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// accessKeysEnabled is 404 access_keys_disabled unless keys are on.
func (s *Server) accessKeysEnabled() error {
	if s.keys.Minter == nil {
		return apierror.New(http.StatusNotFound, "access_keys_disabled", "Scoped Access Keys are not enabled")
	}
	return nil
}

// keyCaller is the authenticated caller of a key route (401 without one).
func keyCaller(r *http.Request) (*authn.Principal, error) {
	p := authn.FromContext(r.Context())
	if p == nil || p.ID == "" {
		return nil, apierror.New(http.StatusUnauthorized, "unauthorized", "Access keys belong to an authenticated caller")
	}
	return p, nil
}

// refuseMinting is 403 access_key_cannot_create for the callers that may
// not mint keys: service principals (also on behalf of a user), service
// accounts, and any request authenticated by an access key — a key cannot
// beget keys, so a leaked key never outlives its own expiry or revocation.
func refuseMinting(p *authn.Principal) error {
	if ident.IsService(p.ID) || ident.IsServiceAccount(p.ID) || p.AccessKey || p.OnBehalfOf != nil {
		return apierror.New(http.StatusForbidden, "access_key_cannot_create",
			"Access keys cannot be created by service principals, service accounts or requests authenticated by an access key")
	}
	return nil
}

// humanPlatformAdmin reports whether p is a user (not a service principal,
// service account or access key) holding PlatformAdmin, as the decision
// point says.
func (s *Server) humanPlatformAdmin(r *http.Request, p *authn.Principal) (bool, error) {
	if ident.IsService(p.ID) || ident.IsServiceAccount(p.ID) || p.AccessKey || p.OnBehalfOf != nil {
		return false, nil
	}
	admin, err := pdp.IsPlatformAdmin(r.Context(), s.pdp, pdp.Subject(p))
	if err != nil {
		return false, s.pdpFailed(r, p, err)
	}
	return admin, nil
}

// keyRequest is the create body.
type keyRequest struct {
	name, description, serviceAccount *string
	scopes                            *[]string
	expires                           nullableInt
}

func decodeKeyRequest(r *http.Request) (keyRequest, error) {
	var k keyRequest
	var scopes []string
	err := decodeOptionalBody(r, field{name: "name", dst: &k.name}, field{name: "description", dst: &k.description},
		field{name: "expires_in_seconds", dst: &k.expires},
		field{name: "service_account_id", dst: &k.serviceAccount}, field{name: "scopes", dst: &scopes})
	if err != nil {
		return k, err
	}
	if scopes != nil {
		k.scopes = &scopes
	}
	var errs []error
	if k.name != nil && (*k.name == "" || utf8.RuneCountInString(*k.name) > maxKeyName || !utf8.ValidString(*k.name)) {
		errs = append(errs, apierror.Validation("must be 1-"+strconv.Itoa(maxKeyName)+" characters", "body", "name"))
	}
	if k.description != nil {
		errs = append(errs, validDescription(*k.description, "body", "description"))
	}
	if k.serviceAccount != nil && !reServiceAccountID.MatchString(*k.serviceAccount) {
		errs = append(errs, apierror.Validation("must be 1-240 characters matching ^[a-zA-Z0-9][a-zA-Z0-9._+/-]*$", "body", "service_account_id"))
	}
	if k.scopes != nil {
		errs = append(errs, validKeyScopes(*k.scopes))
	}
	return k, firstError(errs...)
}

// validKeyScopes: each a colon scope (group:access), none
// permission-shaped, at most maxKeyScopes, no duplicates.
func validKeyScopes(scopes []string) error {
	if len(scopes) > maxKeyScopes {
		return apierror.Validation("at most "+strconv.Itoa(maxKeyScopes)+" scopes", "body", "scopes")
	}
	seen := map[string]bool{}
	for _, sc := range scopes {
		switch {
		case ident.PermissionShaped(sc):
			return apierror.BadRequest("invalid_scope", "Permission-shaped scopes are not accepted")
		case !ident.ValidScope(sc):
			return apierror.Validation("'"+clip(sc)+"' is not a scope of the form group:access", "body", "scopes")
		case seen[sc]:
			return apierror.Validation("'"+clip(sc)+"' is listed twice", "body", "scopes")
		}
		seen[sc] = true
	}
	return nil
}

// colonScopes are the scopes that restrict a token (those with a colon);
// a token with none has its principal's full rights.
func colonScopes(scopes []string) []string {
	var out []string
	for _, sc := range scopes {
		if strings.Contains(sc, ":") {
			out = append(out, sc)
		}
	}
	return out
}

// keyScopes decides the scopes of a new key from the creator's token: a
// creator whose token is restricted by colon scopes can hand on only what
// it holds — the same scopes, or a service's scope of an access its
// platform: scope covers (platform:read covers entities:read) — and a key
// requested without scopes inherits the creator's restriction instead of
// widening to the principal's full rights. An unrestricted creator may
// request any scopes; none (omitted or empty) means the principal's full
// rights (nil).
func keyScopes(creator []string, requested *[]string) ([]string, error) {
	held := colonScopes(creator)
	// An empty list is no list: a key without scopes has its principal's
	// full rights, so it must never be how a restricted creator escapes
	// its restriction.
	if requested == nil || len(*requested) == 0 {
		if len(held) == 0 {
			return nil, nil
		}
		return slices.Clone(held), nil
	}
	want := slices.Clone(*requested)
	if len(held) == 0 {
		return want, nil
	}
	for _, sc := range want {
		_, access, _ := strings.Cut(sc, ":")
		if !slices.Contains(held, sc) && !slices.Contains(held, "platform:"+access) {
			return nil, &apierror.Error{Status: http.StatusForbidden, Code: "scope_not_held",
				Detail: "A key's scopes must be among the creator's own: '" + clip(sc) + "' is not covered by the token's scopes " + strings.Join(held, ", "),
				Extra:  map[string]any{"held_scopes": held}}
		}
	}
	return want, nil
}

func (s *Server) createAccessKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.accessKeysEnabled(); err != nil {
		return err
	}
	p, err := keyCaller(r)
	if err != nil {
		return err
	}
	if err := refuseMinting(p); err != nil {
		s.securityAt(factsOf(r), "access_key_refused", p, "why", "caller_cannot_create")
		return err
	}
	req, err := decodeKeyRequest(r)
	if err != nil {
		return err
	}
	expiresIn, err := s.keys.Policy.ExpiresIn(req.expires.Value, req.expires.Given && req.expires.Value == nil)
	if err != nil {
		return apierror.BadRequest("invalid_expires_in", "expires_in_seconds: %s", err.Error())
	}
	scopes, err := keyScopes(p.Scopes, req.scopes)
	if err != nil {
		s.securityAt(factsOf(r), "access_key_refused", p, "why", "scope_not_held")
		return err
	}
	now := s.now()
	k := store.AccessKey{Principal: p.ID, EntityType: accesskey.EntityUser, Scopes: scopes, CreatedBy: p.ID,
		Issuer: s.keys.Issuer, Audiences: []string{s.keys.Audience}, Status: store.AccessKeyActive, CreatedAt: now}
	email, groups := p.Email, p.Groups
	if req.serviceAccount != nil {
		admin, err := s.humanPlatformAdmin(r, p)
		if err != nil {
			return err
		}
		if !admin {
			s.securityAt(factsOf(r), "access_key_refused", p, "why", "service_account_not_admin")
			return apierror.New(http.StatusForbidden, "forbidden", "Only PlatformAdmin can create service-bound Scoped Access Keys")
		}
		// A service account is its own principal: it holds what it is
		// bound to, never the creating admin's email or groups.
		k.Principal, k.EntityType, email, groups = ident.ServiceAccountPrefix+*req.serviceAccount, accesskey.EntityServiceAccount, "", nil
	}
	if req.name != nil {
		k.Name = *req.name
	}
	if req.description != nil {
		k.Description = *req.description
	}
	if expiresIn != nil {
		at := now.Add(*expiresIn)
		k.ExpiresAt = &at
	}
	minted, err := s.mintKey(r.Context(), k, email, groups)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "access key created", "jti", minted.JTI, "principal", minted.Principal,
		"created_by", p.ID, "request_id", requestID(r.Context()))
	writeJSON(w, http.StatusCreated, minted)
	return nil
}

// mintKey signs k's token and stores k (with a fresh jti); the token is
// returned only once the key is in the registry, so no token exists for a
// key the registry does not know.
func (s *Server) mintKey(ctx context.Context, k store.AccessKey, email string, groups []string) (mintedKeyView, error) {
	jti, err := accesskey.NewJTI()
	if err != nil {
		return mintedKeyView{}, err
	}
	k.JTI = jti
	token, err := s.keys.Minter.Mint(accesskey.MintRequest{JTI: jti, Subject: k.Principal, EntityType: k.EntityType,
		Name: k.Name, Email: email, Groups: groups, Scopes: k.Scopes, IssuedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt})
	if err != nil {
		return mintedKeyView{}, err
	}
	created, err := s.store.CreateAccessKey(ctx, k)
	if err != nil {
		return mintedKeyView{}, err
	}
	return mintedKeyView{accessKeyView: s.keyView(created), Token: token, TokenType: "Bearer"}, nil
}

func (s *Server) listAccessKeys(w http.ResponseWriter, r *http.Request) error {
	if err := s.accessKeysEnabled(); err != nil {
		return err
	}
	p, err := keyCaller(r)
	if err != nil {
		return err
	}
	page, size, err := keyPage(r)
	if err != nil {
		return err
	}
	admin, err := s.humanPlatformAdmin(r, p)
	if err != nil {
		return err
	}
	keys, more, err := s.store.ListAccessKeys(r.Context(), store.AccessKeyFilter{Principal: p.ID, IncludeServiceAccounts: admin,
		Page: page, PageSize: size})
	if err != nil {
		return err
	}
	views := make([]accessKeyView, len(keys))
	for i, k := range keys {
		views[i] = s.keyView(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": views, "has_more": more})
	return nil
}

// keyPage reads page (≥ 1, default 1) and page_size (1-100, default 100).
func keyPage(r *http.Request) (page, size int, err error) {
	q := r.URL.Query()
	for name := range q {
		if name != "page" && name != "page_size" {
			return 0, 0, apierror.Validation("unknown query parameter", "query", name)
		}
	}
	num := func(name string, def, max int) (int, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, apierror.Validation("must be an integer from 1 to "+strconv.Itoa(max), "query", name)
		}
		return n, nil
	}
	if page, err = num("page", 1, 1<<20); err != nil {
		return 0, 0, err
	}
	if size, err = num("page_size", maxAccessKeysPage, maxAccessKeysPage); err != nil {
		return 0, 0, err
	}
	return page, size, nil
}

// ownKey returns the key named in the path if the caller may manage it:
// its own, or a service account's for a human PlatformAdmin. Any other key
// is 404, as if it did not exist.
func (s *Server) ownKey(r *http.Request) (*authn.Principal, store.AccessKey, error) {
	if err := s.accessKeysEnabled(); err != nil {
		return nil, store.AccessKey{}, err
	}
	p, err := keyCaller(r)
	if err != nil {
		return nil, store.AccessKey{}, err
	}
	jti := r.PathValue("jti")
	notFound := store.NotFound("not_found", "Access key '%s' not found", clip(jti))
	if !store.ValidJTI(jti) {
		return nil, store.AccessKey{}, notFound
	}
	k, err := s.store.GetAccessKey(r.Context(), jti)
	if err != nil {
		return nil, store.AccessKey{}, err
	}
	if k.Principal == p.ID {
		return p, k, nil
	}
	if k.EntityType == accesskey.EntityServiceAccount {
		admin, err := s.humanPlatformAdmin(r, p)
		if err != nil {
			return nil, store.AccessKey{}, err
		}
		if admin {
			return p, k, nil
		}
	}
	return nil, store.AccessKey{}, notFound
}

// keyChanged makes a key's new state effective in this process at once.
func (s *Server) keyChanged(r *http.Request, p *authn.Principal, jti, event string) {
	if s.keys.Invalidate != nil {
		s.keys.Invalidate(jti)
	}
	s.log.InfoContext(r.Context(), "access key "+event, "jti", jti, "by", p.ID, "request_id", requestID(r.Context()))
}

func (s *Server) revokeAccessKey(w http.ResponseWriter, r *http.Request) error {
	p, k, err := s.ownKey(r)
	if err != nil {
		return err
	}
	if _, _, err := s.store.SetAccessKeyStatus(r.Context(), k.JTI, store.AccessKeyRevoked, s.now()); err != nil {
		return err
	}
	s.keyChanged(r, p, k.JTI, "revoked")
	writeJSON(w, http.StatusOK, map[string]any{"jti": k.JTI, "revoked": true})
	return nil
}

func (s *Server) suspendAccessKey(w http.ResponseWriter, r *http.Request) error {
	return s.setKeyStatus(w, r, store.AccessKeyActive, store.AccessKeySuspended, "suspended")
}

func (s *Server) unsuspendAccessKey(w http.ResponseWriter, r *http.Request) error {
	return s.setKeyStatus(w, r, store.AccessKeySuspended, store.AccessKeyActive, "unsuspended")
}

// setKeyStatus moves a key between ACTIVE and SUSPENDED. A key already in
// the target state, or an expired key being unsuspended, is answered
// unchanged; a revoked or rotating key is 409 invalid_state.
func (s *Server) setKeyStatus(w http.ResponseWriter, r *http.Request, from, to store.AccessKeyStatus, event string) error {
	p, k, err := s.ownKey(r)
	if err != nil {
		return err
	}
	now := s.now()
	if st := k.StatusAt(now); st != from && st != to && st != store.AccessKeyExpired {
		return invalidKeyState(k.JTI, st, event)
	}
	updated, changed, err := s.store.SetAccessKeyStatus(r.Context(), k.JTI, to, now)
	if errors.Is(err, store.ErrInvalidState) {
		return invalidKeyState(k.JTI, updated.StatusAt(now), event)
	}
	if err != nil {
		return err
	}
	if changed {
		s.keyChanged(r, p, k.JTI, event)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jti": k.JTI, "status": string(updated.StatusAt(now)), "changed": changed})
	return nil
}

func invalidKeyState(jti string, st store.AccessKeyStatus, verb string) error {
	return apierror.New(http.StatusConflict, "invalid_state", "Access key '%s' is %s and cannot be %s", jti, st, verb)
}

func (s *Server) rotateAccessKey(w http.ResponseWriter, r *http.Request) error {
	p, k, err := s.ownKey(r)
	if err != nil {
		return err
	}
	// Rotation mints a key: the same callers as creation may do it.
	if err := refuseMinting(p); err != nil {
		s.securityAt(factsOf(r), "access_key_refused", p, "why", "caller_cannot_create")
		return err
	}
	var grace *int
	if err := decodeOptionalBody(r, field{name: "grace_period_seconds", dst: &grace}); err != nil {
		return err
	}
	d, err := s.keys.Policy.GracePeriod(grace)
	if err != nil {
		return apierror.BadRequest("invalid_grace_period", "grace_period_seconds: %s", err.Error())
	}
	now := s.now()
	if st := k.StatusAt(now); st != store.AccessKeyActive {
		return invalidKeyState(k.JTI, st, "rotated")
	}
	next := store.AccessKey{Name: k.Name, Description: k.Description, Principal: k.Principal, EntityType: k.EntityType,
		Scopes: k.Scopes, Issuer: s.keys.Issuer, Audiences: []string{s.keys.Audience}, Status: store.AccessKeyActive,
		CreatedAt: now, CreatedBy: p.ID}
	if k.ExpiresAt != nil { // the same lifetime as the key it replaces
		at := now.Add(k.ExpiresAt.Sub(k.CreatedAt))
		next.ExpiresAt = &at
	}
	email, groups := p.Email, p.Groups
	if k.EntityType == accesskey.EntityServiceAccount {
		email, groups = "", nil
	}
	jti, err := accesskey.NewJTI()
	if err != nil {
		return err
	}
	next.JTI = jti
	token, err := s.keys.Minter.Mint(accesskey.MintRequest{JTI: jti, Subject: next.Principal, EntityType: next.EntityType,
		Name: next.Name, Email: email, Groups: groups, Scopes: next.Scopes, IssuedAt: now, ExpiresAt: next.ExpiresAt})
	if err != nil {
		return err
	}
	graceUntil := now.Add(d)
	prev, created, err := s.store.RotateAccessKey(r.Context(), k.JTI, graceUntil, next, now)
	if errors.Is(err, store.ErrInvalidState) {
		return invalidKeyState(k.JTI, prev.StatusAt(now), "rotated")
	}
	if err != nil {
		return err
	}
	s.keyChanged(r, p, k.JTI, "rotated")
	writeJSON(w, http.StatusOK, map[string]any{
		"new_key":                 mintedKeyView{accessKeyView: s.keyView(created), Token: token, TokenType: "Bearer"},
		"previous_jti":            k.JTI,
		"previous_status":         string(store.AccessKeyRotating),
		"grace_period_seconds":    int(d / time.Second),
		"grace_period_expires_at": timestampOf(prev.GracePeriodExpiresAt),
	})
	return nil
}

// keyScopeDecision binds an access key to its own scopes whoever holds it.
// The policy lets a PlatformAdmin skip the scope layer; a key restricted
// to platform:read must not write even when a PlatformAdmin minted it. For
// a key with colon scopes on an endpoint that lists scopes none of which
// the key holds, the answer is a deny scope_missing before the decision
// point is asked; otherwise ok is false and the decision point decides.
func (s *Server) keyScopeDecision(p *authn.Principal, method, path string) (authz.Decision, bool) {
	if p == nil || !p.AccessKey || s.roles == nil || len(colonScopes(p.Scopes)) == 0 {
		return authz.Decision{}, false
	}
	req, found := s.roles.Requirement(method, path)
	if !found || authz.ScopesOK(p.Scopes, req.Scopes) {
		return authz.Decision{}, false
	}
	return authz.Decision{Allowed: false, Reason: "scope_missing"}, true
}

// keyUsed notes that an access key authenticated a request; the recorder
// writes its last_used_at at most once a minute, off the request path.
func (s *Server) keyUsed(p *authn.Principal) {
	if p != nil && p.AccessKey && p.TokenID != "" {
		s.keyUse.Seen(p.TokenID, s.now())
	}
}
