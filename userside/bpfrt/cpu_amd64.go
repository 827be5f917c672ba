//go:build amd64 && linux

package bpfrt

// On Linux, RDTSCP returns (node << 12) | cpu in TSC_AUX: the CPU number
// without a system call (what the vDSO's getcpu does).
func rdtscpAux() uint32

func hasRDTSCP() bool

var useRDTSCP = hasRDTSCP() && checkRDTSCP()

// checkRDTSCP makes sure the kernel fills TSC_AUX as expected: the CPU it
// gives must match getcpu's on this thread at least once.
func checkRDTSCP() bool {
	for i := 0; i < 8; i++ {
		a := int(rdtscpAux() & 0xfff)
		c := currentCPU()
		b := int(rdtscpAux() & 0xfff)
		if a == c && b == c {
			return true
		}
	}
	return false
}

func currentCPUCheap() int {
	if useRDTSCP {
		return int(rdtscpAux() & 0xfff)
	}
	return currentCPU()
}
