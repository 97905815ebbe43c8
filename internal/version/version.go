// Package version holds the build version of the nmp binary.
package version

// Version is the version of this build. Release builds set it with
//
//	go build -ldflags "-X github.com/nmp-project/nmp/internal/version.Version=1.2.3"
var Version = "dev"
