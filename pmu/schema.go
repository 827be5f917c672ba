package pmu

import "github.com/kushm/kushm/internal/abi"

// SchemaCatalogue returns the presets as the entries of the abi.CatPMU
// catalogue: the columns of the region's "pmu" and "procs" sections
// (abi.Sections), one per preset, named by Preset.Name.
func SchemaCatalogue() []abi.CatalogueEntry {
	out := make([]abi.CatalogueEntry, 0, NumPresets)
	for _, p := range presets {
		out = append(out, abi.CatalogueEntry{ID: uint32(p.ID), Name: p.Name, Unit: p.Unit})
	}
	return out
}
