//go:build linux

package msr_test

import (
	"fmt"
	"time"

	"github.com/kushm/kushm/msr"
)

// Read package energy from a fixture tree's powercap files and extend the
// wrapping counter.
func Example() {
	r := msr.Open(&msr.Options{Root: "testdata/intel-server"})
	defer r.Close()
	rd, err := r.Read(0, msr.PKG_ENERGY_STATUS)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s via %s: %.3f J\n", rd.Name, rd.Source, rd.Value)

	c := msr.NewCounter(32, rd.Range, 0)
	c.Update(rd.Raw, time.Now())

	_, err = r.Read(0, msr.MPERF)
	fmt.Println(err != nil)
	// Output:
	// PKG_ENERGY_STATUS via powercap: 123.457 J
	// true
}

func ExampleDefaultAllowlist() {
	a := msr.DefaultAllowlist()
	fmt.Println(a.CheckRead(0x611) == nil, a.CheckRead(0x1A0) != nil, a.CheckWrite(0x611, 1) != nil)
	// Output: true true true
}

func ExampleEffectiveFrequency() {
	hz, _ := msr.EffectiveFrequency(200_000_000, 150_000_000, 100_000_000, 100*time.Millisecond)
	fmt.Printf("%.1f GHz\n", hz/1e9)
	// Output: 3.0 GHz
}
