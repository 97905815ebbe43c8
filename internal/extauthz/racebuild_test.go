//go:build race

package extauthz_test

func init() { raceBuild = true }
