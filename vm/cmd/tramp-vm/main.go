// Command tramp-vm runs the "tramp vm" subcommands on their own (fetch,
// hello); scripts/setup uses it to fill the kernel cache. It is the same
// code as "tramp vm ..." in the main tramp command.
package main

import (
	"os"

	"github.com/bpftramp/tramp/vm/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
