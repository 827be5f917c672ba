package shm

// Released is the number of address ranges the cleanups of closed,
// unreachable regions have unmapped.
func Released() int64 { return released.Load() }

// RetireFailed is the number of mappings Close could not retire.
func RetireFailed() int64 { return retireFailed.Load() }
