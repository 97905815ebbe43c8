// Package scaletest holds measurements of the real server process at
// scale (docs/benchmarks.md "Policy load at scale"). Its tests run only
// when asked for through the environment; they are not part of the
// default test run.
package scaletest
