package accesskey

import (
	"errors"
	"testing"
	"time"
)

func TestPolicyExpiresIn(t *testing.T) {
	hour, day := time.Hour, 24*time.Hour
	limited := Policy{DefaultExpiresIn: &hour, MaxExpiresIn: &day}
	unlimited := Policy{DefaultExpiresIn: &hour}
	noDefault := Policy{}
	n := func(v int) *int { return &v }
	tests := []struct {
		name      string
		p         Policy
		requested *int
		null      bool
		want      *time.Duration
		wantErr   bool
	}{
		{"omitted: default", limited, nil, false, &hour, false},
		{"omitted without default: none", noDefault, nil, false, nil, false},
		{"null with a maximum: refused", limited, nil, true, nil, true},
		{"null without a maximum: no expiry", unlimited, nil, true, nil, false},
		{"at the maximum", limited, n(86400), false, &day, false},
		{"above the maximum", limited, n(86401), false, nil, true},
		{"zero", limited, n(0), false, nil, true},
		{"negative", unlimited, n(-5), false, nil, true},
		{"huge without maximum", unlimited, n(1 << 62), false, nil, true},
		{"long without maximum", unlimited, n(10 * 365 * 86400), false, new(10 * 365 * day), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.ExpiresIn(tt.requested, tt.null)
			var pe *PolicyError
			if tt.wantErr != (err != nil) || (err != nil && !errors.As(err, &pe)) {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyGracePeriod(t *testing.T) {
	p := NewPolicy(testConfig(t)) // defaults: 2 days, at most 30 days
	n := func(v int) *int { return &v }
	tests := []struct {
		name      string
		requested *int
		want      time.Duration
		wantErr   bool
	}{
		{"omitted: default", nil, 48 * time.Hour, false},
		{"zero", n(0), 0, false},
		{"at the maximum", n(2592000), 30 * 24 * time.Hour, false},
		{"above the maximum", n(2592001), 0, true},
		{"negative", n(-1), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.GracePeriod(tt.requested)
			if tt.wantErr != (err != nil) || got != tt.want {
				t.Fatalf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNewPolicyFromConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth.AccessKeys.MaxExpiresInSeconds = nil
	p := NewPolicy(cfg)
	if p.IssueFormat != "jwt" || p.MaxExpiresIn != nil || p.DefaultExpiresIn == nil || *p.DefaultExpiresIn != 30*24*time.Hour ||
		p.MaxGracePeriod != 30*24*time.Hour {
		t.Fatalf("%+v", p)
	}
	if d, err := p.ExpiresIn(nil, true); err != nil || d != nil {
		t.Fatalf("null expiry with an unlimited maximum: %v %v", d, err)
	}
}
