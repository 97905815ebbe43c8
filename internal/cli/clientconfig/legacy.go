package clientconfig

import (
	"encoding/base64"
	"encoding/json"
	"net/mail"
	"time"
)

// legacyAPIKeyField is where some old configs kept the key instead of token.
const legacyAPIKeyField = "api_key"

// migrateLegacyUsers turns type api-key users into oauth users: an
// email-like key becomes an unsigned JWT for that email (what old
// development servers accepted as an "API key"), anything else is used as a
// bearer token as is.
func migrateLegacyUsers(f *File, now time.Time) error {
	for i := range f.Users {
		u := &f.Users[i]
		if u.Type != userTypeLegacyAPIKey {
			continue
		}
		value := u.Token
		if node, ok := u.Extra[legacyAPIKeyField]; ok {
			if value == "" {
				_ = node.Decode(&value)
			}
			delete(u.Extra, legacyAPIKeyField)
		}
		u.Type, u.Token = UserTypeOAuth, value
		switch {
		case value == "":
			u.Type = UserTypeNoAuth
		case isEmail(value):
			token, err := UnsignedJWT(struct {
				Sub   string `json:"sub"`
				Email string `json:"email"`
				Iat   int64  `json:"iat"`
			}{value, value, now.Unix()})
			if err != nil {
				return err
			}
			u.Token = token
		}
	}
	return nil
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// UnsignedJWT returns the unsigned JWT
// b64url({"alg":"none","typ":"JWT"}) "." b64url(json(claims)) "."
// accepted by servers with allow_unsigned_jwt.
func UnsignedJWT(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".", nil
}
