package bpfrt

import "github.com/kushm/kushm/internal/sys"

// monoBase is CLOCK_MONOTONIC when the package was initialised.
var monoBase = sys.MonotonicNs()

func currentCPU() int { return sys.CurrentCPU() }

func gettid() int { return sys.Gettid() }
