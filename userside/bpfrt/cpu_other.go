//go:build !(amd64 && linux)

package bpfrt

func currentCPUCheap() int { return currentCPU() }
