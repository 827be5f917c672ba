package rcuhash_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
)

// BenchmarkLookupBPF is the kernel's way to share such a table: a BPF hash
// map read with one bpf(BPF_MAP_LOOKUP_ELEM) system call per lookup. It
// needs permission to create maps (root here) and skips otherwise.
func BenchmarkLookupBPF(b *testing.B) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 64, MaxEntries: 2048})
	if err != nil {
		b.Skipf("bpf() hash map not available here: %v", err)
	}
	defer m.Close()
	_, _, keys := benchTable(b, 1<<10)
	o := order(keys)
	v := make([]byte, 64)
	for i, k := range o {
		binary.LittleEndian.PutUint64(v, o[(i+1)%len(o)])
		if err := m.Put(k, v); err != nil {
			b.Fatal(err)
		}
	}
	k := keys[0]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Lookup(k, v); err != nil {
			b.Fatal(err)
		}
		k = binary.LittleEndian.Uint64(v)
	}
	sink += k
}
