package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func at(d time.Duration) *time.Time { v := t0.Add(d); return &v }

func TestAccessKeyStatusAtAndUsableAt(t *testing.T) {
	tests := []struct {
		name       string
		key        store.AccessKey
		now        time.Time
		wantStatus store.AccessKeyStatus
		wantUsable bool
	}{
		{"active without expiry", store.AccessKey{Status: store.AccessKeyActive}, t0, store.AccessKeyActive, true},
		{"active before expiry", store.AccessKey{Status: store.AccessKeyActive, ExpiresAt: at(time.Second)}, t0, store.AccessKeyActive, true},
		{"active at expiry is expired", store.AccessKey{Status: store.AccessKeyActive, ExpiresAt: at(0)}, t0, store.AccessKeyExpired, false},
		{"active after expiry", store.AccessKey{Status: store.AccessKeyActive, ExpiresAt: at(-time.Hour)}, t0, store.AccessKeyExpired, false},
		{"suspended", store.AccessKey{Status: store.AccessKeySuspended}, t0, store.AccessKeySuspended, false},
		{"suspended and expired", store.AccessKey{Status: store.AccessKeySuspended, ExpiresAt: at(-1)}, t0, store.AccessKeyExpired, false},
		{"revoked", store.AccessKey{Status: store.AccessKeyRevoked}, t0, store.AccessKeyRevoked, false},
		{"revoked stays revoked after expiry", store.AccessKey{Status: store.AccessKeyRevoked, ExpiresAt: at(-1)}, t0, store.AccessKeyRevoked, false},
		{"rotating within grace", store.AccessKey{Status: store.AccessKeyRotating, GracePeriodExpiresAt: at(time.Minute)}, t0, store.AccessKeyRotating, true},
		{"rotating at the end of grace", store.AccessKey{Status: store.AccessKeyRotating, GracePeriodExpiresAt: at(0)}, t0, store.AccessKeyRotating, false},
		{"rotating after grace", store.AccessKey{Status: store.AccessKeyRotating, GracePeriodExpiresAt: at(-time.Minute)}, t0, store.AccessKeyRotating, false},
		{"rotating without grace", store.AccessKey{Status: store.AccessKeyRotating}, t0, store.AccessKeyRotating, false},
		{"rotating within grace but expired", store.AccessKey{Status: store.AccessKeyRotating, GracePeriodExpiresAt: at(time.Hour), ExpiresAt: at(-1)}, t0, store.AccessKeyExpired, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.StatusAt(tc.now); got != tc.wantStatus {
				t.Errorf("StatusAt = %s, want %s", got, tc.wantStatus)
			}
			if got := tc.key.UsableAt(tc.now); got != tc.wantUsable {
				t.Errorf("UsableAt = %v, want %v", got, tc.wantUsable)
			}
		})
	}
}

func TestAccessKeyEndsAt(t *testing.T) {
	tests := []struct {
		name string
		key  store.AccessKey
		want *time.Time
	}{
		{"no expiry", store.AccessKey{Status: store.AccessKeyActive}, nil},
		{"expiry", store.AccessKey{Status: store.AccessKeyActive, ExpiresAt: at(time.Hour)}, at(time.Hour)},
		{"grace ignored unless rotating", store.AccessKey{Status: store.AccessKeyRevoked, ExpiresAt: at(time.Hour), GracePeriodExpiresAt: at(time.Minute)}, at(time.Hour)},
		{"rotating without expiry", store.AccessKey{Status: store.AccessKeyRotating, GracePeriodExpiresAt: at(time.Minute)}, at(time.Minute)},
		{"rotating, grace first", store.AccessKey{Status: store.AccessKeyRotating, ExpiresAt: at(time.Hour), GracePeriodExpiresAt: at(time.Minute)}, at(time.Minute)},
		{"rotating, expiry first", store.AccessKey{Status: store.AccessKeyRotating, ExpiresAt: at(time.Minute), GracePeriodExpiresAt: at(time.Hour)}, at(time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.key.EndsAt()
			switch {
			case got == nil && tc.want == nil:
			case got == nil || tc.want == nil || !got.Equal(*tc.want):
				t.Fatalf("EndsAt = %v, want %v", got, tc.want)
			}
			if got != nil && (got == tc.key.ExpiresAt || got == tc.key.GracePeriodExpiresAt) {
				t.Fatal("EndsAt must return a copy, not the key's own pointer")
			}
		})
	}
}

func TestValidJTI(t *testing.T) {
	hex32 := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"valid", "ak_" + hex32, true},
		{"all zeros", "ak_" + strings.Repeat("0", 32), true},
		{"empty", "", false},
		{"prefix only", "ak_", false},
		{"no prefix", hex32, false},
		{"other prefix", "sk_" + hex32, false},
		{"uppercase prefix", "AK_" + hex32, false},
		{"uppercase hex", "ak_" + strings.ToUpper(hex32), false},
		{"31 digits", "ak_" + hex32[:31], false},
		{"33 digits", "ak_" + hex32 + "0", false},
		{"non-hex letter", "ak_" + hex32[:31] + "g", false},
		{"trailing newline", "ak_" + hex32[:31] + "\n", false},
		{"multibyte", "ak_" + hex32[:30] + "é", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.ValidJTI(tc.in); got != tc.want {
				t.Fatalf("ValidJTI(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestErrInvalidState(t *testing.T) {
	tests := []struct {
		name                   string
		err                    error
		wantState, wantConfict bool
	}{
		{"invalid state", store.InvalidState("no"), true, true},
		{"other conflict", store.Conflict("already_exists", "dup"), false, true},
		{"not found", store.AccessKeyNotFound("ak_x"), false, false},
		{"invalid", store.Invalid("invalid_state", "same code, other kind"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, store.ErrInvalidState); got != tc.wantState {
				t.Errorf("errors.Is(ErrInvalidState) = %v, want %v", got, tc.wantState)
			}
			if got := errors.Is(tc.err, store.ErrConflict); got != tc.wantConfict {
				t.Errorf("errors.Is(ErrConflict) = %v, want %v", got, tc.wantConfict)
			}
		})
	}
}
