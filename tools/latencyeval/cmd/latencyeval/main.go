// Command latencyeval prints the evaluation of docs/latency-thresholds.md:
// every stream through the k·σ and quantile modes (sysstat.Sim, the Go
// twin of the kernel's bpf_kushm_record_latency), as a Markdown table.
//
//	go run ./tools/latencyeval/cmd/latencyeval [-n 1000000] [-h 14] [-cpus 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kushm/kushm/internal/sysstat"
	"github.com/kushm/kushm/tools/latencyeval"
)

func main() {
	n := flag.Int("n", 1_000_000, "samples per stream")
	hs := flag.String("h", strconv.Itoa(sysstat.DefaultDecayShift), "decay shifts h to compare, comma separated")
	cpus := flag.Int("cpus", 1, "CPUs the samples are spread over (round robin)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	fmt.Printf("| h | stream | mode | stable rate | after-step rate | samples to recover |\n|---|---|---|---|---|---|\n")
	for _, hv := range strings.Split(*hs, ",") {
		h, err := strconv.ParseUint(hv, 10, 32)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad -h:", hv)
			os.Exit(2)
		}
		for _, s := range latencyeval.Streams(*n) {
			for _, c := range latencyeval.Configs(uint32(h), *cpus) {
				r := latencyeval.Run(s, c, *n, *seed)
				after, rec := "", ""
				if s.Step > 0 {
					after = latencyeval.Pct(r.AfterRate)
					rec = "never"
					if r.Recovery >= 0 {
						rec = strconv.Itoa(r.Recovery)
					}
				}
				mark := func(rate float64) string {
					if latencyeval.Within2x(rate, r.Target) {
						return latencyeval.Pct(rate)
					}
					return "**" + latencyeval.Pct(rate) + "**"
				}
				if after != "" {
					after = mark(r.AfterRate)
				}
				fmt.Printf("| %d | %s | %s | %s | %s | %s |\n", h, s.Name, c.Name, mark(r.StableRate), after, rec)
			}
		}
	}
}
