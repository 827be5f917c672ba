package provider

import (
	"syscall"
	"testing"
)

// touchPages maps n fresh anonymous pages and writes one byte to each:
// at least n page faults in this process.
func touchPages(t testing.TB, n int) {
	t.Helper()
	ps := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, n*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n*ps; i += ps {
		mem[i] = 1
	}
	syscall.Munmap(mem)
}
