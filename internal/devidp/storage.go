package devidp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes and limits fixed by cli.md or chosen here.
const (
	authRequestTTL     = 10 * time.Minute  // an /authorize request waiting for the sign-in form
	authCodeTTL        = 60 * time.Second  // cli.md: single use, 60 s
	deviceCodeTTL      = 600 * time.Second // cli.md: 600 s
	devicePollInterval = 5 * time.Second   // cli.md: interval 5 s
	slowDownStep       = 5 * time.Second   // RFC 8628, section 3.5
	pollGrace          = time.Second       // polls up to 1 s early are not "too fast"
	maxLoginFailures   = 5                 // then the authorization request is denied
	gcInterval         = 30 * time.Second
)

// storage is the in-memory op.Storage. Users and clients are fixed at
// construction; everything else is guarded by mu. Codes, device codes and
// refresh tokens are kept only as SHA-256 digests.
type storage struct {
	now        func() time.Time
	log        *slog.Logger
	accessTTL  time.Duration
	refreshTTL time.Duration
	audience   string // "" = the requesting client_id
	signing    signingKey
	public     publicKey

	clients  map[string]*client
	users    map[string]*user // by username
	subjects map[string]*user // by subject

	mu           sync.Mutex
	lastGC       time.Time
	authRequests map[string]*authRequest  // by id
	codes        map[string]codeEntry     // digest(code)
	usedCodes    map[string]codeEntry     // digest(code), until the code's expiry
	devices      map[string]*deviceAuth   // digest(device_code)
	userCodes    map[string]string        // user_code -> digest(device_code)
	refresh      map[string]*refreshEntry // digest(refresh token)
	rotated      map[string]rotatedEntry  // digest(used refresh token)
	access       map[string]accessEntry   // jti
}

type codeEntry struct {
	authRequestID string
	clientID      string
	expires       time.Time
}

type deviceAuth struct {
	id       string // grant id: the family of its refresh tokens
	clientID string
	userCode string
	scopes   []string
	audience []string
	expires  time.Time
	interval time.Duration
	lastPoll time.Time
	done     bool
	denied   bool
	subject  string
	authTime time.Time
	failures int
}

type refreshEntry struct {
	family   string
	clientID string
	subject  string
	scopes   []string
	audience []string
	authTime time.Time
	expires  time.Time
}

type rotatedEntry struct {
	family   string
	clientID string
	expires  time.Time
}

type accessEntry struct {
	client   bool // the principal is the client (client credentials)
	clientID string
	subject  string
	scopes   []string
	expires  time.Time
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.DeviceAuthorizationStorage     = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
)

// dummyUser and dummyClient absorb the comparison for unknown names, so
// that an unknown name costs the same as a wrong password.
var (
	dummyUser   = &user{pwDigest: sha256.Sum256([]byte(newID()))}
	dummyClient = &client{secretDigest: sha256.Sum256([]byte(newID()))}
)

func newStorage(now func() time.Time, log *slog.Logger) *storage {
	return &storage{
		now:          now,
		log:          log,
		clients:      map[string]*client{},
		users:        map[string]*user{},
		subjects:     map[string]*user{},
		authRequests: map[string]*authRequest{},
		codes:        map[string]codeEntry{},
		usedCodes:    map[string]codeEntry{},
		devices:      map[string]*deviceAuth{},
		userCodes:    map[string]string{},
		refresh:      map[string]*refreshEntry{},
		rotated:      map[string]rotatedEntry{},
		access:       map[string]accessEntry{},
	}
}

// newID returns 256 random bits, base64url: request ids, grant ids,
// refresh tokens, CSRF cookies.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return string(d[:])
}

func (s *storage) audienceFor(clientID string) []string {
	if s.audience != "" {
		return []string{s.audience}
	}
	return []string{clientID}
}

// authenticateUser returns the user if the password matches, in time
// independent of whether the user exists.
func (s *storage) authenticateUser(username, password string) *user {
	u := s.users[username]
	if u == nil {
		dummyUser.passwordMatches(password)
		return nil
	}
	if !u.passwordMatches(password) {
		return nil
	}
	return u
}

// authenticateClient checks a confidential client's secret in time
// independent of whether the client exists. Public clients never pass.
func (s *storage) authenticateClient(id, secret string) *client {
	c := s.clients[id]
	if c == nil {
		dummyClient.secretMatches(secret)
		return nil
	}
	if !c.secretMatches(secret) {
		return nil
	}
	return c
}

// gcLocked drops expired state, at most every gcInterval.
func (s *storage) gcLocked(now time.Time) {
	if now.Sub(s.lastGC) < gcInterval {
		return
	}
	s.lastGC = now
	maps.DeleteFunc(s.authRequests, func(_ string, a *authRequest) bool { return now.After(a.expires) })
	maps.DeleteFunc(s.codes, func(_ string, e codeEntry) bool { return now.After(e.expires) })
	maps.DeleteFunc(s.usedCodes, func(_ string, e codeEntry) bool { return now.After(e.expires) })
	maps.DeleteFunc(s.devices, func(_ string, d *deviceAuth) bool {
		if now.After(d.expires) {
			delete(s.userCodes, d.userCode)
			return true
		}
		return false
	})
	maps.DeleteFunc(s.refresh, func(_ string, r *refreshEntry) bool { return now.After(r.expires) })
	maps.DeleteFunc(s.rotated, func(_ string, r rotatedEntry) bool { return now.After(r.expires) })
	maps.DeleteFunc(s.access, func(_ string, a accessEntry) bool { return now.After(a.expires) })
}

// revokeFamilyLocked deletes every refresh token of a grant.
func (s *storage) revokeFamilyLocked(family string) int {
	n := 0
	maps.DeleteFunc(s.refresh, func(_ string, r *refreshEntry) bool {
		if r.family == family {
			n++
			return true
		}
		return false
	})
	return n
}

// --- authorization code flow -------------------------------------------

// CreateAuthRequest stores a validated /authorize request. PKCE with S256
// is required; prompt=none cannot succeed (no sessions).
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("the development IdP keeps no sessions: prompt=none cannot succeed")
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	now := s.now()
	a := &authRequest{
		id:            newID(),
		clientID:      req.ClientID,
		redirectURI:   req.RedirectURI,
		state:         req.State,
		nonce:         req.Nonce,
		scopes:        slices.Clone([]string(req.Scopes)),
		audience:      s.audienceFor(req.ClientID),
		responseType:  req.ResponseType,
		responseMode:  req.ResponseMode,
		codeChallenge: &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: oidc.CodeChallengeMethodS256},
		expires:       now.Add(authRequestTTL),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now)
	s.authRequests[a.id] = a
	return a.clone(), nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[id]
	if a == nil || s.now().After(a.expires) {
		return nil, errors.New("unknown or expired authorization request")
	}
	return a.clone(), nil
}

// pendingAuth returns the authorization request waiting for sign-in, or
// nil.
func (s *storage) pendingAuth(id string) *authRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[id]
	if a == nil || a.done || s.now().After(a.expires) {
		return nil
	}
	return a.clone()
}

type loginResult int

const (
	loginUnknown        loginResult = iota // no such pending request (or code)
	loginBadCredentials                    // wrong username or password
	loginLocked                            // too many failures: the request is denied
	loginOK
)

// authLogin signs a user in for a pending authorization request.
func (s *storage) authLogin(id, username, password string) (loginResult, *authRequest) {
	u := s.authenticateUser(username, password)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	a := s.authRequests[id]
	if a == nil || a.done || now.After(a.expires) {
		return loginUnknown, nil
	}
	if u == nil {
		a.failures++
		if a.failures >= maxLoginFailures {
			delete(s.authRequests, id)
			return loginLocked, a.clone()
		}
		return loginBadCredentials, nil
	}
	a.done, a.subject, a.authTime = true, u.subject, now
	return loginOK, a.clone()
}

// SaveAuthCode records the code issued for a signed-in request; it is
// valid for authCodeTTL.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[id]
	if a == nil || !a.done {
		return errors.New("authorization request not signed in")
	}
	exp := s.now().Add(authCodeTTL)
	s.codes[digest(code)] = codeEntry{authRequestID: id, clientID: a.clientID, expires: exp}
	a.expires = exp
	return nil
}

// AuthRequestByCode consumes the code: it works once, whatever the
// outcome of the exchange. Replaying a used code within its lifetime
// revokes the refresh tokens issued for it (RFC 6749, section 4.1.2).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	d := digest(code)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e, ok := s.codes[d]
	if !ok {
		if used, replay := s.usedCodes[d]; replay && !now.After(used.expires) {
			n := s.revokeFamilyLocked(used.authRequestID)
			s.log.Warn("authorization code replayed; refresh tokens issued for it are revoked",
				"client_id", used.clientID, "revoked_refresh_tokens", n)
		}
		return nil, errors.New("unknown or used authorization code")
	}
	delete(s.codes, d)
	s.usedCodes[d] = e
	if now.After(e.expires) {
		return nil, errors.New("expired authorization code")
	}
	a := s.authRequests[e.authRequestID]
	if a == nil || !a.done {
		return nil, errors.New("unknown authorization request")
	}
	return a.clone(), nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	return nil
}

// --- tokens --------------------------------------------------------------

func (s *storage) accessEntryFor(req op.TokenRequest, exp time.Time) (accessEntry, error) {
	switch r := req.(type) {
	case *clientRequest:
		return accessEntry{client: true, clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.scopes), expires: exp}, nil
	case *authRequest:
		return accessEntry{clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.scopes), expires: exp}, nil
	case *refreshRequest:
		return accessEntry{clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.current), expires: exp}, nil
	}
	return accessEntry{}, oidc.ErrUnsupportedGrantType()
}

// CreateAccessToken records a new access token (its jti) and returns its
// expiry; zitadel signs the JWT.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.accessTTL)
	e, err := s.accessEntryFor(req, exp)
	if err != nil {
		return "", time.Time{}, err
	}
	jti := newID()
	s.mu.Lock()
	s.gcLocked(now)
	s.access[jti] = e
	s.mu.Unlock()
	s.logIssued(e, false)
	return jti, exp, nil
}

// CreateAccessAndRefreshTokens issues an access token id and an opaque
// refresh token. With currentRefreshToken (the refresh grant) the old
// token is rotated out atomically: of two concurrent uses one fails.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	now := s.now()
	var r refreshEntry
	switch t := req.(type) {
	case *authRequest:
		r = refreshEntry{family: t.id, clientID: t.clientID, subject: t.subject, scopes: slices.Clone(t.scopes),
			audience: slices.Clone(t.audience), authTime: t.authTime}
	case *refreshRequest:
		// The new token stands for the original grant, not for a
		// narrowed refresh.
		r = refreshEntry{family: t.family, clientID: t.clientID, subject: t.subject, scopes: slices.Clone(t.scopes),
			audience: slices.Clone(t.audience), authTime: t.authTime}
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	r.expires = now.Add(s.refreshTTL)
	exp := now.Add(s.accessTTL)
	e, err := s.accessEntryFor(req, exp)
	if err != nil {
		return "", "", time.Time{}, err
	}
	token, jti := newID(), newID()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now)
	if currentRefreshToken != "" {
		d := digest(currentRefreshToken)
		old, ok := s.refresh[d]
		if !ok || old.family != r.family || old.clientID != r.clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used, revoked or expired")
		}
		delete(s.refresh, d)
		s.rotated[d] = rotatedEntry{family: old.family, clientID: old.clientID, expires: old.expires}
	}
	s.refresh[digest(token)] = &r
	s.access[jti] = e
	s.logIssued(e, true)
	return jti, token, exp, nil
}

func (s *storage) logIssued(e accessEntry, refresh bool) {
	s.log.Info("tokens issued", "client_id", e.clientID, "sub", e.subject,
		"scope", strings.Join(e.scopes, " "), "refresh_token", refresh)
}

// TokenRequestByRefreshToken looks a refresh token up. Presenting a token
// that was already rotated out revokes its whole family (reuse
// detection, OAuth 2.0 Security BCP section 4.14.2).
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	d := digest(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if r, ok := s.refresh[d]; ok {
		if now.After(r.expires) {
			delete(s.refresh, d)
			return nil, errors.New("expired refresh token")
		}
		if s.subjects[r.subject] == nil {
			return nil, errors.New("refresh token of an unknown user")
		}
		return &refreshRequest{
			family: r.family, clientID: r.clientID, subject: r.subject,
			scopes: slices.Clone(r.scopes), current: slices.Clone(r.scopes),
			audience: slices.Clone(r.audience), authTime: r.authTime,
		}, nil
	}
	if r, ok := s.rotated[d]; ok && !now.After(r.expires) {
		n := s.revokeFamilyLocked(r.family)
		s.log.Warn("rotated refresh token reused; its token family is revoked",
			"client_id", r.clientID, "revoked_refresh_tokens", n)
	}
	return nil, errors.New("unknown, used or expired refresh token")
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, tokenOrTokenID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID == "" {
		d := digest(tokenOrTokenID)
		if r, ok := s.refresh[d]; ok && r.clientID == clientID {
			delete(s.refresh, d)
		}
		return nil
	}
	if a, ok := s.access[tokenOrTokenID]; ok && a.clientID == clientID {
		delete(s.access, tokenOrTokenID)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	d := digest(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.refresh[d]; ok && r.clientID == clientID {
		return r.subject, base64.RawURLEncoding.EncodeToString([]byte(d)), nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.signing, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{s.public}, nil }

// --- clients and claims --------------------------------------------------

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c := s.clients[id]
	if c == nil {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if s.authenticateClient(id, secret) == nil {
		s.logClientFailure(id)
		return errors.New("invalid client credentials")
	}
	return nil
}

func (s *storage) logClientFailure(id string) {
	if _, known := s.clients[id]; known {
		s.log.Warn("client authentication failed", "client_id", id)
	} else {
		s.log.Warn("client authentication failed: unknown client")
	}
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by zitadel; SetUserinfoFromRequest does the work
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u := s.subjects[req.GetSubject()]
	if u == nil {
		return errors.New("unknown user")
	}
	fillUserinfo(info, u, scopes)
	return nil
}

func fillUserinfo(info *oidc.UserInfo, u *user, scopes []string) {
	info.Subject = u.subject
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.email
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.username
	}
	info.AppendClaims("groups", slices.Clone(u.groups))
}

// SetUserinfoFromToken answers /userinfo for an access token this
// provider issued and that has not expired.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	e, ok := s.access[tokenID]
	now := s.now()
	s.mu.Unlock()
	if !ok || now.After(e.expires) || e.subject != subject {
		return errors.New("unknown or expired access token")
	}
	if !e.client {
		u := s.subjects[subject]
		if u == nil {
			return errors.New("unknown user")
		}
		fillUserinfo(info, u, e.scopes)
		return nil
	}
	c := s.clients[e.clientID]
	if c == nil {
		return errors.New("unknown client")
	}
	info.Subject = c.subject
	if slices.Contains(e.scopes, oidc.ScopeEmail) {
		info.Email = c.email
	}
	info.AppendClaims("groups", slices.Clone(c.groups))
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("token introspection is not offered")
}

// GetPrivateClaimsFromRequest adds email, groups and scope to access
// tokens (zitadel sets iss sub aud exp iat nbf jti client_id).
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	var (
		email  string
		groups []string
	)
	if cr, ok := req.(*clientRequest); ok {
		c := s.clients[cr.clientID]
		if c == nil {
			return nil, errors.New("unknown client")
		}
		email, groups = c.email, c.groups
	} else {
		u := s.subjects[req.GetSubject()]
		if u == nil {
			return nil, errors.New("unknown user")
		}
		email, groups = u.email, u.groups
	}
	return principalClaims(email, groups, req.GetScopes()), nil
}

func principalClaims(email string, groups, scopes []string) map[string]any {
	claims := map[string]any{
		"groups": cloneStrings(groups), // always a JSON array
		"scope":  strings.Join(scopes, " "),
	}
	if email != "" {
		claims["email"] = email
	}
	return claims
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, scopes []string) (map[string]any, error) {
	u := s.subjects[userID]
	if u == nil {
		return nil, errors.New("unknown user")
	}
	return principalClaims(u.email, u.groups, scopes), nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client assertions are not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// --- client credentials --------------------------------------------------

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c := s.authenticateClient(id, secret)
	if c == nil {
		s.logClientFailure(id)
		return nil, errors.New("invalid client credentials")
	}
	return c, nil
}

// ClientCredentialsTokenRequest grants the client's configured scopes,
// whatever was requested.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, _ []string) (op.TokenRequest, error) {
	c := s.clients[clientID]
	if c == nil {
		return nil, oidc.ErrInvalidClient()
	}
	return &clientRequest{clientID: c.id, subject: c.subject, scopes: cloneStrings(c.scopes), audience: s.audienceFor(c.id)}, nil
}

// --- device authorization --------------------------------------------------

// StoreDeviceAuthorization starts a device flow. zitadel's expiry (from
// the wall clock) is replaced by one from the provider's clock; the
// requested scopes are granted by the user-flow rule.
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, _ time.Time, scopes []string) error {
	c := s.clients[clientID]
	if c == nil {
		return errors.New("unknown client")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now)
	if _, taken := s.userCodes[userCode]; taken {
		return op.ErrDuplicateUserCode
	}
	d := digest(deviceCode)
	s.devices[d] = &deviceAuth{
		id:       newID(),
		clientID: clientID,
		userCode: userCode,
		scopes:   c.grantScopes(scopes),
		audience: s.audienceFor(clientID),
		expires:  now.Add(deviceCodeTTL),
		interval: devicePollInterval,
	}
	s.userCodes[userCode] = d
	s.log.Info("device authorization started", "client_id", clientID)
	return nil
}

// GetDeviceAuthorizatonState completes op.DeviceAuthorizationStorage; the
// /token front end polls through pollDevice instead. zitadel compares
// Expires with the wall clock, so the provider clock's verdict is mapped
// onto it.
func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[digest(deviceCode)]
	if d == nil || d.clientID != clientID {
		return nil, errors.New("unknown device code")
	}
	expires := time.Now().Add(d.expires.Sub(s.now()))
	return &op.DeviceAuthorizationState{
		ClientID: d.clientID, Audience: slices.Clone(d.audience), Scopes: slices.Clone(d.scopes),
		Expires: expires, Done: d.done, Denied: d.denied,
		Subject: d.subject, AMR: []string{"pwd"}, AuthTime: d.authTime,
	}, nil
}

// pendingDevice reports the client and scopes of a device flow waiting
// for its user.
func (s *storage) pendingDevice(userCode string) (clientID string, scopes []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[s.userCodes[userCode]]
	if d == nil || d.done || d.denied || s.now().After(d.expires) {
		return "", nil, false
	}
	return d.clientID, slices.Clone(d.scopes), true
}

// deviceLogin approves the device flow of userCode for the user.
func (s *storage) deviceLogin(userCode, username, password string) (loginResult, string) {
	u := s.authenticateUser(username, password)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	d := s.devices[s.userCodes[userCode]]
	if d == nil || d.done || d.denied || now.After(d.expires) {
		return loginUnknown, ""
	}
	if u == nil {
		d.failures++
		if d.failures >= maxLoginFailures {
			d.denied = true
			return loginLocked, d.clientID
		}
		return loginBadCredentials, d.clientID
	}
	d.done, d.subject, d.authTime = true, u.subject, now
	return loginOK, d.clientID
}

// pollDevice answers a device_code token request (RFC 8628, section
// 3.5): expired_token, access_denied, the grant (once), or while pending
// slow_down for a poll before the interval (then 5 s longer) and
// authorization_pending otherwise.
func (s *storage) pollDevice(clientID, deviceCode string) (*authRequest, *oidc.Error) {
	key := digest(deviceCode)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	d := s.devices[key]
	if d == nil || d.clientID != clientID {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown or used device_code")
	}
	finish := func() {
		delete(s.devices, key)
		delete(s.userCodes, d.userCode)
	}
	switch {
	case now.After(d.expires):
		finish()
		return nil, oidc.ErrExpiredDeviceCode().WithDescription("the device code expired; start again")
	case d.denied:
		finish()
		return nil, oidc.ErrAccessDenied().WithDescription("the authorization request was denied")
	case d.done:
		finish()
		return &authRequest{
			id: d.id, clientID: d.clientID, scopes: slices.Clone(d.scopes), audience: slices.Clone(d.audience),
			responseType: oidc.ResponseTypeCode, done: true, subject: d.subject, authTime: d.authTime,
		}, nil
	case !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < d.interval-pollGrace:
		d.interval += slowDownStep
		d.lastPoll = now
		return nil, oidc.ErrSlowDown().WithDescription("polling too fast; wait longer between requests")
	}
	d.lastPoll = now
	return nil, oidc.ErrAuthorizationPending()
}
