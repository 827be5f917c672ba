// Command kushm is the command-line front end of kushm: it loads the kernel
// module, runs the userspace provider, and reads the shared region.
//
// The command is thin: every subcommand parses flags and calls into a
// package. Subcommands register themselves from their own file with
// register(), so that each area of the tool owns one file here.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/shm"
)

// globals are the flags every subcommand sees.
type globals struct {
	// Root is prepended to /sys, /dev and /proc paths so tests can point
	// the tool at fixture trees (as node_exporter's --path.* flags do).
	Root string
	// Region is the path of the shared region to open; empty means
	// "discover": the kernel module's /dev/kushm first, then debugfs,
	// then the userspace provider's default file.
	Region string
	// Output is the output format: "table" or "json".
	Output string
	// ProducerUIDs: uids trusted to own a discovered region (trust.go).
	ProducerUIDs string

	// metrics are the /metrics settings (serve and web flags).
	metrics metricsOptions

	stdout io.Writer
	stderr io.Writer
}

// registry of subcommand constructors, filled by init functions.
var registry []func(g *globals) *cobra.Command

func register(f func(g *globals) *cobra.Command) { registry = append(registry, f) }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "kushm",
		Short:         "kernel-user shared memory: PMU, MSR and per-process stats without a syscall per read",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.Root, "root", "/", "root of the /sys, /dev and /proc trees (for fixtures)")
	pf.StringVar(&g.Region, "region", "", "path of the shared region (default: discover)")
	pf.StringVarP(&g.Output, "output", "o", "table", "output format: table or json")
	addTrustFlags(pf, g)
	for _, f := range registry {
		root.AddCommand(f(g))
	}
	return root
}

// run executes the command line args, writing normal output to stdout.
// It is what main calls and what the tests call.
func run(args []string, stdout io.Writer) error {
	return runWith(args, stdout, os.Stderr)
}

func runWith(args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	// A region file shrunk under a mapping faults: an error, not SIGBUS.
	return shm.Guard(root.Execute)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kushm:", err)
		os.Exit(1)
	}
}
