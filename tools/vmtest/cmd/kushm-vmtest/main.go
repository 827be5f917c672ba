// Command kushm-vmtest runs kushm's kernel tests in qemu for one or more
// Debian kernels (see package tools/vmtest). `make vmtest` runs it.
//
//	kushm-vmtest [-kernel 6.1,6.12,6.12-rt] [-build make|dkms] [-run ^TestVM] [-packages file] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/kushm/kushm/tools/vmtest"
)

func main() {
	kernels := flag.String("kernel", "6.1,6.12,6.12-rt", "comma-separated kernel series to test")
	run := flag.String("run", os.Getenv("VMTEST_RUN"), "-test.run pattern inside the guest (default ^TestVM)")
	pkgs := flag.String("packages", "tools/vmtest/packages.txt", "file listing the packages to test")
	timeout := flag.Duration("timeout", 8*time.Minute, "limit per kernel, boot to poweroff")
	verbose := flag.Bool("v", true, "stream the guest's console")
	build := flag.String("build", "make", "how to build kushm.ko: make (kmod/Makefile against the kbtf tree) or dkms (dkms add + dkms build, the user's path)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	repo, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	packages, err := vmtest.ReadPackages(*pkgs)
	if err != nil {
		fail(err)
	}
	if len(flag.Args()) > 0 {
		packages = flag.Args()
	}
	log := os.Stdout
	// The test binaries do not depend on the kernel: built once.
	binDir, err := os.MkdirTemp(vmtest.CacheDir(), "bins-")
	if err != nil {
		fail(err)
	}
	pre := &vmtest.Prebuilt{Dir: binDir}
	var failed []string
	var summary []string
	for _, s := range strings.Split(*kernels, ",") {
		s = strings.TrimSpace(s)
		k, err := vmtest.LoadKernel(vmtest.CacheDir(), s)
		if err != nil {
			os.RemoveAll(binDir)
			fail(err)
		}
		o := vmtest.Options{Repo: repo, Kernel: k, Packages: packages, Run: *run, Timeout: *timeout, Build: *build, Prebuilt: pre}
		if *verbose {
			o.Log = log
		}
		res, err := vmtest.Run(ctx, o)
		if err == nil {
			err = res.Failed()
		}
		if res != nil {
			var ps []string
			for _, p := range res.Packages {
				st := "ok"
				if !p.Passed() {
					st = "FAIL"
				}
				ps = append(ps, st+" "+p.Name)
			}
			summary = append(summary, fmt.Sprintf("%-5s %s: build %s, boot %s, total %s; %s",
				s, k.KVer, res.Build.Round(time.Millisecond), res.Boot.Round(time.Millisecond),
				res.Total.Round(time.Millisecond), strings.Join(ps, ", ")))
			for _, c := range res.BootComplaints {
				summary = append(summary, "      logged while booting, before /init (not failed on): "+c)
			}
		}
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	os.RemoveAll(binDir)
	fmt.Println("--- vmtest summary")
	for _, l := range summary {
		fmt.Println(l)
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(os.Stderr, "FAIL:", f)
		}
		os.Exit(1)
	}
	fmt.Println("PASS")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kushm-vmtest:", err)
	os.Exit(2)
}
