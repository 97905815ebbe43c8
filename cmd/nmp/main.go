// Command nmp is the NMP access-control server and CLI.
package main

import (
	"os"

	"github.com/nmp-project/nmp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
