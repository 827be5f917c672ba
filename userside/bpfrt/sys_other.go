//go:build !linux

package bpfrt

import "os"

var monoBase uint64

func currentCPU() int { return 0 }

func gettid() int { return os.Getpid() }
