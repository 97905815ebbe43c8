package server

import (
	"context"
	"errors"
	"time"

	"github.com/nmp-project/nmp/internal/authn/accesskey"
	"github.com/nmp-project/nmp/internal/lastseen"
	"github.com/nmp-project/nmp/internal/store"
)

// keyRegistry is the access-key registry of the store, as the access-key
// validator asks it: whether a key is usable now, and until when.
type keyRegistry struct {
	store store.Store
	clock func() time.Time
}

var _ accesskey.Registry = keyRegistry{}

// Lookup implements accesskey.Registry.
func (r keyRegistry) Lookup(ctx context.Context, jti string) (accesskey.KeyState, error) {
	k, err := r.store.GetAccessKey(ctx, jti)
	if errors.Is(err, store.ErrNotFound) {
		return accesskey.KeyState{}, accesskey.ErrNotFound
	}
	if err != nil {
		return accesskey.KeyState{}, err
	}
	now := r.clock()
	return accesskey.KeyState{Principal: k.Principal, Usable: k.UsableAt(now), Status: string(k.StatusAt(now)),
		UsableUntil: k.EndsAt()}, nil
}

// keyFeed keeps the validator's registry cache true to the store: a
// key's change (an ak: notice, from this process or another replica)
// forgets its cached state at once; a resynchronized feed forgets
// everything and makes the cache usable; a broken feed makes every
// request read the registry until the feed is back, so that no change
// made meanwhile on another replica is missed. Its state is a health
// component: not ready until the feed is first connected.
type keyFeed struct {
	feed   store.ChangeFeed
	cache  *accesskey.Cache
	health interface{ Set(string, error) }
}

// keyFeedComponent is the feed's name in health and logs.
const keyFeedComponent = "access-key feed"

// Name implements lifecycle.Component.
func (keyFeed) Name() string { return keyFeedComponent }

// Run implements lifecycle.Component.
func (f keyFeed) Run(ctx context.Context) error {
	defer f.cache.SetFeedHealthy(false)
	err := f.feed.WatchPolicy(ctx, func(ev store.PolicyEvent) {
		switch {
		case ev.AccessKey != "":
			f.cache.Invalidate(ev.AccessKey)
		case ev.Resync:
			f.cache.Reset()
			f.cache.SetFeedHealthy(true)
			f.health.Set(keyFeedComponent, nil)
		case ev.Err != nil:
			f.cache.SetFeedHealthy(false)
			// The cause may name the database host and user; readiness is
			// public (the policy syncer logs the same feed's interruption).
			f.health.Set(keyFeedComponent, errors.New("disconnected, every request reads the registry"))
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// keyUseWriter writes an access key's last use through the store; the
// lastseen recorder coalesces uses to one per key per interval.
type keyUseWriter struct{ store store.Store }

// RecordLastSeen implements lastseen.Writer: each sighting's principal
// is a key's jti.
func (w keyUseWriter) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	uses := make([]store.AccessKeyUse, len(seen))
	for i, s := range seen {
		uses[i] = store.AccessKeyUse{JTI: s.Principal, At: s.At.Time}
	}
	return w.store.RecordAccessKeyUse(ctx, uses)
}

// keyUseInterval: last_used_at is written at most once a minute per key.
const keyUseInterval = time.Minute

func newKeyUseRecorder(st store.Store, s *Server) *lastseen.Recorder {
	return lastseen.New(lastseen.Options{Name: "access-key use", Store: keyUseWriter{st}, Interval: keyUseInterval,
		Clock: s.clock, Log: s.log, Health: s.health, StopTimeout: time.Duration(s.cfg.Service.ShutdownTimeoutSeconds) * time.Second})
}
