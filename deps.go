//go:build tools

package kushm

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/google/gops/agent"
	_ "github.com/hodgesds/perf-utils"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/sys/unix"
)
