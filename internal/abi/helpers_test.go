package abi

import "fmt"

func fmtSscanf(line string, key, want *uint64) (int, error) {
	return fmt.Sscanf(line, "%x %x", key, want)
}
