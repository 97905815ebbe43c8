package devidp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The sign-in forms are protected against cross-site request forgery by a
// double-submit token: an HttpOnly, SameSite=Strict cookie holding a random
// value, and a hidden field holding HMAC(server key, purpose, bound id,
// cookie). The sign-in form is bound to its authorization request id, so a
// token for one request is useless for another. All output goes through
// html/template, which escapes it.
const (
	csrfCookie  = "nmp_devidp_csrf"
	csrfField   = "csrf_token"
	authReqPara = "auth_request_id"

	// contentSecurityPolicy allows no script, no framing and no foreign
	// resources. form-action is left open: a successful sign-in redirects
	// to the client's (loopback) redirect URI.
	contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)

var pages = template.Must(template.New("pages").Parse(`
{{- define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - NMP development IdP</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
.banner{background:#b91c1c;color:#fff;font-weight:bold;padding:.5rem;border-radius:4px;text-align:center}
.error{color:#b91c1c;font-weight:bold}
label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem;box-sizing:border-box;font-size:1rem}
button{padding:.5rem 1.2rem;font-size:1rem}code{background:#eee;padding:0 .2rem}
</style></head><body><main>
<p class="banner">{{.Banner}}</p>
{{- end}}
{{- define "foot"}}
</main></body></html>
{{end}}
{{- define "scopes"}}{{if .ClientID}}<p>Application <code>{{.ClientID}}</code> asks for
{{- range .Scopes}} <code>{{.}}</code>{{else}} no scopes{{end}}.</p>{{end}}{{end}}
{{- define "error"}}{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}{{end}}
{{- define "login"}}{{template "head" .}}
<h1>Sign in</h1>
{{template "scopes" .}}
{{template "error" .}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="auth_request_id" value="{{.RequestID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label>Username <input name="username" value="{{.Username}}" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
{{- template "foot" .}}{{end}}
{{- define "device"}}{{template "head" .}}
<h1>Connect a device</h1>
{{template "scopes" .}}
<p>Enter the code your device shows, then sign in to authorize it.</p>
{{template "error" .}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label>Code <input name="user_code" value="{{.UserCode}}" placeholder="XXXX-XXXX" autocomplete="off" spellcheck="false" required {{if not .UserCode}}autofocus{{end}}></label>
<label>Username <input name="username" value="{{.Username}}" autocomplete="username" required {{if .UserCode}}autofocus{{end}}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Authorize device</button>
</form>
{{- template "foot" .}}{{end}}
{{- define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- template "foot" .}}{{end}}
`))

// page is the data of every template.
type page struct {
	Banner    string
	Title     string
	Message   string
	Error     string
	ClientID  string
	Scopes    []string
	Action    string
	RequestID string
	CSRF      string
	Username  string
	UserCode  string
}

func (p *Provider) render(w http.ResponseWriter, status int, name string, data page) {
	data.Banner = Banner
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		p.log.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (p *Provider) message(w http.ResponseWriter, status int, title, msg string) {
	p.render(w, status, "message", page{Title: title, Message: msg})
}

// csrfCookieValue returns the browser's CSRF cookie, setting a new one if
// it has none.
func (p *Provider) csrfCookieValue(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validCookie(c.Value) {
		return c.Value
	}
	v := newID()
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: v, Path: p.prefix + "/",
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteStrictMode,
	})
	return v
}

func validCookie(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

func (p *Provider) csrfToken(cookie, purpose, bind string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte("nmp-dev-idp-csrf\x00" + purpose + "\x00" + bind + "\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) csrfValid(r *http.Request, purpose, bind string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validCookie(c.Value) {
		return false
	}
	want := p.csrfToken(c.Value, purpose, bind)
	return hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(want))
}

// authorize is /authorize: with auth_request_id it is the sign-in form
// (GET) or its submission (POST); otherwise a new authorization request
// that zitadel validates (client, redirect URI, response type, scopes,
// PKCE method) and stores before redirecting to the form.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad request", "The request could not be parsed.")
		return
	}
	id := r.Form.Get(authReqPara)
	switch {
	case id == "":
		p.op.ServeHTTP(w, r)
	case r.Method == http.MethodPost:
		p.loginSubmit(w, r, r.PostForm.Get(authReqPara))
	default:
		p.loginForm(w, r, id, "", "", http.StatusOK)
	}
}

const (
	expiredTitle = "Sign-in request expired"
	expiredMsg   = "This sign-in request is unknown, used or expired. Start the login again from your application."
)

func (p *Provider) loginForm(w http.ResponseWriter, r *http.Request, id, username, errMsg string, status int) {
	a := p.store.pendingAuth(id)
	if a == nil {
		p.message(w, http.StatusBadRequest, expiredTitle, expiredMsg)
		return
	}
	cookie := p.csrfCookieValue(w, r)
	p.render(w, status, "login", page{
		Title: "Sign in", ClientID: a.clientID, Scopes: a.scopes, Error: errMsg,
		Action: p.prefix + "/authorize", RequestID: id, Username: username,
		CSRF: p.csrfToken(cookie, "authorize", id),
	})
}

func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request, id string) {
	username := r.PostForm.Get("username")
	if !p.csrfValid(r, "authorize", id) {
		p.log.Warn("sign-in form rejected: missing or invalid CSRF token", "flow", "authorization_code")
		p.loginForm(w, r, id, username, "The form expired. Please sign in again.", http.StatusForbidden)
		return
	}
	res, a := p.store.authLogin(id, username, r.PostForm.Get("password"))
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	switch res {
	case loginUnknown:
		p.message(w, http.StatusBadRequest, expiredTitle, expiredMsg)
	case loginBadCredentials:
		p.log.Warn("sign-in failed", "flow", "authorization_code", p.usernameAttr(username))
		p.loginForm(w, r, id, username, "Invalid username or password.", http.StatusUnauthorized)
	case loginLocked:
		p.log.Warn("sign-in failed too often; authorization request denied", "flow", "authorization_code",
			"client_id", a.clientID, p.usernameAttr(username))
		op.AuthRequestError(w, r.WithContext(ctx), a,
			oidc.ErrAccessDenied().WithDescription("too many failed sign-in attempts"), p.op)
	case loginOK:
		p.log.Info("user signed in", "flow", "authorization_code", "client_id", a.clientID, "sub", a.subject)
		// Issues the single-use code and redirects to the client.
		op.AuthResponse(a, p.op, w, r.WithContext(ctx))
	}
}

// normalizeUserCode accepts any case, spaces and dashes: "bcdf ghjk" is
// BCDF-GHJK.
func normalizeUserCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	c := b.String()
	if len(c) == 8 {
		return c[:4] + "-" + c[4:]
	}
	return c
}

// deviceForm is GET /device (verification_uri; verification_uri_complete
// adds ?user_code=).
func (p *Provider) deviceForm(w http.ResponseWriter, r *http.Request) {
	p.deviceRender(w, r, normalizeUserCode(r.URL.Query().Get("user_code")), "", "", http.StatusOK)
}

func (p *Provider) deviceRender(w http.ResponseWriter, r *http.Request, code, username, errMsg string, status int) {
	data := page{
		Title: "Connect a device", Action: p.prefix + "/device", UserCode: code, Username: username, Error: errMsg,
		CSRF: p.csrfToken(p.csrfCookieValue(w, r), "device", ""),
	}
	if code != "" {
		if clientID, scopes, ok := p.store.pendingDevice(code); ok {
			data.ClientID, data.Scopes = clientID, scopes
		}
	}
	p.render(w, status, "device", data)
}

// deviceSubmit is POST /device: user code, username and password approve
// the device flow.
func (p *Provider) deviceSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad request", "The request could not be parsed.")
		return
	}
	code := normalizeUserCode(r.PostForm.Get("user_code"))
	username := r.PostForm.Get("username")
	if !p.csrfValid(r, "device", "") {
		p.log.Warn("device form rejected: missing or invalid CSRF token", "flow", "device_code")
		p.deviceRender(w, r, code, username, "The form expired. Please try again.", http.StatusForbidden)
		return
	}
	res, clientID := p.store.deviceLogin(code, username, r.PostForm.Get("password"))
	switch res {
	case loginUnknown:
		p.deviceRender(w, r, code, username, "Unknown or expired code. Check the code your device shows.", http.StatusBadRequest)
	case loginBadCredentials:
		p.log.Warn("sign-in failed", "flow", "device_code", "client_id", clientID, p.usernameAttr(username))
		p.deviceRender(w, r, code, username, "Invalid username or password.", http.StatusUnauthorized)
	case loginLocked:
		p.log.Warn("sign-in failed too often; device authorization denied", "flow", "device_code",
			"client_id", clientID, p.usernameAttr(username))
		p.message(w, http.StatusForbidden, "Device authorization denied",
			"Too many failed sign-in attempts. Start again on your device.")
	case loginOK:
		p.log.Info("user signed in", "flow", "device_code", "client_id", clientID)
		p.message(w, http.StatusOK, "Device authorized", "You can close this window and return to your device.")
	}
}
