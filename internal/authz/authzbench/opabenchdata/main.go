// Command opabenchdata writes the data and input of the PDP benchmark for
// the opa CLI (docs/benchmarks.md):
//
//	go run ./internal/authz/authzbench/opabenchdata -bindings 10000 -dir /tmp/opa-bench
//	opa bench -d internal/authz/policy -d /tmp/opa-bench/data.json -i /tmp/opa-bench/input.json data.authz.allow
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nmp-project/nmp/internal/authz/authzbench"
)

func main() {
	n := flag.Int("bindings", 100, "number of role bindings")
	dir := flag.String("dir", "", "directory to write data.json and input.json to (required)")
	flag.Parse()
	if *dir == "" || *n < 0 {
		flag.Usage()
		os.Exit(2)
	}
	e, err := authzbench.Engine(*n)
	if err == nil {
		err = authzbench.WriteOPAFiles(*dir, e)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "opabenchdata:", err)
		os.Exit(1)
	}
}
