package msr

import "github.com/kushm/kushm/internal/abi"

// SchemaCatalogue returns the catalogue as the entries of the abi.CatMSR
// catalogue: the columns of the region's "msr" section (abi.Sections).
// Counters are counter columns, status registers gauges; only
// thread-scoped counters add up to a machine total (a core or package
// register is read on several CPUs), so only they merge by sum.
func SchemaCatalogue() []abi.CatalogueEntry {
	out := make([]abi.CatalogueEntry, 0, NumMSRs)
	for _, e := range catalogue {
		c := abi.CatalogueEntry{ID: uint32(e.ID), Name: e.Name, Unit: e.Unit, Kind: abi.ColGauge, Merge: abi.MergeNone}
		if e.Kind == KindCounter {
			c.Kind = abi.ColCounter
			if e.Scope == ScopeThread {
				c.Merge = abi.MergeSum
			}
		}
		out = append(out, c)
	}
	return out
}
