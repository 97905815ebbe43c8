// Package faulttest is the load and fault harness: its tests start a
// real `nmp services run` process (built in TestMain) with RS256 bearer
// tokens from a test issuer, drive it with a mix of reads, project
// writes and membership changes from many principals, check every
// response against the state the harness tracks (no wrong allow ever, no
// wrong deny after the propagation bound), and break its dependencies
// under load: PostgreSQL connections killed or the server restarted, the
// external OPA stopped, SQLite's disk full, the IdP down.
//
// Every test here needs the build tag faults, the steady load included:
// they are load runs, kept out of the default `go test ./...` (.ci/run
// runs them in a step of their own, all but the PostgreSQL server
// restart, which stops the machine's shared server). By default each
// scenario runs for a few seconds; NMP_FAULT_DURATION (a Go duration,
// e.g. 60s) sets the load duration. See the README for the commands.
package faulttest
