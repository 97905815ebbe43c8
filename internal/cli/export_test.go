package cli

import (
	"context"
	"time"
)

// WithBrowserOpener returns ctx whose nmp runs open URLs with open instead
// of the system browser (for tests in package cli_test).
func WithBrowserOpener(ctx context.Context, open func(ctx context.Context, url string) error) context.Context {
	h := hooksFrom(ctx)
	h.openBrowser = open
	return withLoginHooks(ctx, h)
}

// WithDevicePollInterval returns ctx whose nmp runs poll the device flow's
// token endpoint every d (rounded up to whole seconds).
func WithDevicePollInterval(ctx context.Context, d time.Duration) context.Context {
	h := hooksFrom(ctx)
	h.devicePollInterval = d
	return withLoginHooks(ctx, h)
}
