package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// version is set by the linker (-X main.version=...) in release builds.
var version = "0.1.0-dev"

func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "print the kushm version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(g.stdout, "kushm", version)
				return err
			},
		}
	})
}
