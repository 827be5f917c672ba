package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kushm/kushm/internal/modload"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var module string
		var params []string
		c := &cobra.Command{
			Use:   "load [--module kushm.ko] [--param k=v ...]",
			Short: "load the kushm kernel module (the in-kernel producer of the region)",
			Long: `load loads kushm.ko with finit_module(2). Without --module it loads the
module installed for the running kernel (DKMS or make -C kmod install).
Parameters (modinfo kushm.ko lists them): interval_ms, procs_capacity,
syscalls_capacity, presets, msrs, dev_mode.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				p, err := modload.ParseParams(params)
				if err != nil {
					return err
				}
				path, err := modload.Find(module)
				if err != nil {
					return err
				}
				if err := modload.Load(path, p); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "loaded %s; region at /dev/kushm and /sys/kernel/debug/kushm/region\n", path)
				return nil
			},
		}
		c.Flags().StringVar(&module, "module", "", "path of kushm.ko (default: the installed module of the running kernel)")
		c.Flags().StringArrayVar(&params, "param", nil, "module parameter name=value (repeatable)")
		return c
	})
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "unload",
			Short: "unload the kushm kernel module (refused while a process has the region mapped)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := modload.Unload(); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, "unloaded kushm")
				return nil
			},
		}
	})
}
