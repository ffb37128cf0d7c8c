package main

import (
	"fmt"
	"io"
	"os"

	"github.com/bpftramp/tramp/vm/cli"
)

// Exit codes.
const (
	exitOK    = 0
	exitCheck = 1
	exitUsage = 2
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"check", "replay the case corpus on every kernel profile and arch; fail on any disagreement", runCheck},
		{"link", "replay a case's attach/detach steps and show the trampoline's lists and flags", runLink},
		{"plan", "print the generator input (Plan) after a case's last step, as JSON", runPlan},
		{"gen", "generate the trampoline image after a case's last step (asm, hex or json)", runGen},
		{"vm", "boot real kernels under QEMU: fetch, hello, check, record ('tramp vm' lists them)", func(args []string, stdout, stderr io.Writer) int { return cli.Main(args, stdout, stderr) }},
		{"diff", "instruction-level diff of a case's image between two kernel profiles", runDiff},
		{"timeline", "which kernel builds changed a case's real images, and how: real against real, from recordings", runTimeline},
		{"explain", "annotated listing and frame diagram of the image after a case's last step", runExplain},
		{"observed", "what the programs observed in a real kernel, per run and function, from a recording", runObserved},
		{"emu", "execute the image of each run step and check what every program observes", runEmu},
		{"report", "merge the --json results of tramp vm shards into one table, JSON, JUnit XML and Markdown summary", runReport},
		{"bench", "what fentry/fexit/fmod_ret/fsession cost: live in real kernels, and statically in the emulator", runBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: tramp COMMAND [flags] [args]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n'tramp COMMAND --help' describes a command. Exit codes: 0 ok, 1 a check failed, 2 bad usage or input.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tramp: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}
