//go:build race

package authz_test

func init() { raceBuild = true }
