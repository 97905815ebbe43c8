//go:build faults && race

package faulttest

// The harness's nmp is built with -race when its tests are, so that the
// build reuses the packages the test build compiled (a cold README test
// command would otherwise compile the whole dependency tree twice), and
// the server under load is checked by the race detector too.
func init() { raceBuild = true }
