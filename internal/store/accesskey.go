package store

import "time"

// AccessKeyStatus is the state of an access key. ACTIVE, SUSPENDED,
// ROTATING and REVOKED are stored; EXPIRED is computed from the expiry
// (StatusAt) and never stored.
type AccessKeyStatus string

// Access key statuses.
const (
	AccessKeyActive    AccessKeyStatus = "ACTIVE"
	AccessKeySuspended AccessKeyStatus = "SUSPENDED"
	AccessKeyRotating  AccessKeyStatus = "ROTATING"
	AccessKeyRevoked   AccessKeyStatus = "REVOKED"
	AccessKeyExpired   AccessKeyStatus = "EXPIRED"
)

// Entity types of an access key's principal.
const (
	AccessKeyUser           = "USER"
	AccessKeyServiceAccount = "SERVICE_ACCOUNT"
)

// Limits of an access key's text fields, in characters.
const (
	AccessKeyNameMax        = 128
	AccessKeyDescriptionMax = 1024
)

// AccessKey is the registry entry of a platform-minted access token,
// identified by the token's jti. The token itself is never stored.
type AccessKey struct {
	JTI         string
	Name        string
	Description string
	Principal   string
	// EntityType is AccessKeyUser or AccessKeyServiceAccount.
	EntityType string
	Issuer     string
	Audiences  []string
	// Scopes nil means the key is unscoped (the principal's full rights);
	// an empty non-nil list is a key with no scope at all.
	Scopes               []string
	Status               AccessKeyStatus
	CreatedAt            time.Time
	CreatedBy            string
	ExpiresAt            *time.Time
	GracePeriodExpiresAt *time.Time
	LastUsedAt           *time.Time
	RevokedAt            *time.Time
	// ReplacedBy is the jti of the key a rotation created ("" if none).
	ReplacedBy string
}

// StatusAt is the status reported at now: the stored status, except that
// a key past its expiry is EXPIRED unless it was revoked. A ROTATING key
// whose grace period has ended is still reported ROTATING, but it is not
// usable (see UsableAt).
func (k AccessKey) StatusAt(now time.Time) AccessKeyStatus {
	if k.Status != AccessKeyRevoked && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return AccessKeyExpired
	}
	return k.Status
}

// UsableAt reports whether a token of the key is accepted at now: ACTIVE
// and not expired, or ROTATING, not expired and within its grace period.
func (k AccessKey) UsableAt(now time.Time) bool {
	switch k.StatusAt(now) {
	case AccessKeyActive:
		return true
	case AccessKeyRotating:
		return k.GracePeriodExpiresAt != nil && now.Before(*k.GracePeriodExpiresAt)
	}
	return false
}

// EndsAt is the instant after which the key can no longer become usable
// by itself: the earlier of its expiry and, for a ROTATING key, the end of
// its grace period. Nil means no end.
func (k AccessKey) EndsAt() *time.Time {
	end := k.ExpiresAt
	if k.Status == AccessKeyRotating && k.GracePeriodExpiresAt != nil &&
		(end == nil || k.GracePeriodExpiresAt.Before(*end)) {
		end = k.GracePeriodExpiresAt
	}
	if end == nil {
		return nil
	}
	t := *end
	return &t
}

// ValidJTI reports whether s is an access key id: "ak_" and exactly 32
// lowercase hex digits.
func ValidJTI(s string) bool {
	if len(s) != 35 || s[:3] != "ak_" {
		return false
	}
	for _, c := range []byte(s[3:]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// AccessKeyFilter selects the keys of ListAccessKeys: those of Principal,
// plus every service-account key when IncludeServiceAccounts is set,
// newest first (ties by jti). Page starts at 1; PageSize is at least 1.
type AccessKeyFilter struct {
	Principal              string
	IncludeServiceAccounts bool
	Page, PageSize         int
}

// AccessKeyUse is one authenticated use of a key, as the last-used
// recorder hands it to RecordAccessKeyUse.
type AccessKeyUse struct {
	JTI string
	At  time.Time
}
