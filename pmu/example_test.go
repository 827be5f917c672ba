//go:build linux

package pmu_test

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/kushm/kushm/pmu"
)

// Count the page faults of the calling thread and explain any preset that
// cannot be counted here.
func Example() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	ids := []pmu.PresetID{pmu.SW_PAGE_FAULTS, pmu.PAPI_TOT_INS}
	r, err := pmu.OpenProcess(0, ids, &pmu.Options{Group: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	for i, id := range r.Presets() {
		if err := r.Err(i); errors.Is(err, pmu.ErrNotAvailable) {
			_ = id // err reads "PAPI_TOT_INS: not available on this machine, because ..."
		}
	}
	prev := make([]pmu.Value, len(ids))
	cur := make([]pmu.Value, len(ids))
	r.Read(prev)
	buf := make([]byte, 64<<10)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	r.Read(cur)
	d := pmu.DeltasFrom(ids, prev, cur)
	fmt.Println("page faults counted:", d.OK[pmu.SW_PAGE_FAULTS])
	// Output: page faults counted: true
}

func ExamplePresets() {
	for _, p := range pmu.Presets()[:3] {
		m, _ := pmu.MappingFor(pmu.VendorAMD, p.ID)
		fmt.Printf("%d %s %s type=%d config=%#x\n", p.ID, p.Name, p.Column, m.Event.Type, m.Event.Config)
	}
	// Output:
	// 0 PAPI_TOT_CYC tot_cyc type=0 config=0x0
	// 1 PAPI_TOT_INS tot_ins type=0 config=0x1
	// 2 PAPI_REF_CYC ref_cyc type=0 config=0x9
}

func ExampleProbe() {
	rep := pmu.Probe(&pmu.ProbeOptions{Root: "testdata/vm-nopmu", Static: true})
	fmt.Println(rep.Presets[pmu.PAPI_TOT_CYC].Err)
	fmt.Println(rep.Presets[pmu.SW_PAGE_FAULTS].Available)
	// Output:
	// PAPI_TOT_CYC: not available on this machine, because the kernel has no hardware PMU for this CPU (no core PMU under /sys/bus/event_source/devices; a VM without a virtual PMU)
	// true
}
