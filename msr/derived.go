package msr

import "time"

// EffectiveFrequency is the average clock of a CPU while it was not
// halted: TSC rate × ΔAPERF / ΔMPERF, in Hz. ok is false without
// reference cycles or time.
func EffectiveFrequency(dTSC, dAPERF, dMPERF uint64, dt time.Duration) (hz float64, ok bool) {
	if dMPERF == 0 || dt <= 0 {
		return 0, false
	}
	tscHz := float64(dTSC) / dt.Seconds()
	return tscHz * float64(dAPERF) / float64(dMPERF), true
}

// BusyPercent is the share of time a CPU was not halted: ΔMPERF / ΔTSC
// (both tick at the reference rate), in percent.
func BusyPercent(dMPERF, dTSC uint64) (pct float64, ok bool) {
	if dTSC == 0 {
		return 0, false
	}
	p := 100 * float64(dMPERF) / float64(dTSC)
	if p > 100 {
		p = 100
	}
	return p, true
}

// Watts is energy over time: Δjoules / Δt.
func Watts(dJoules float64, dt time.Duration) (w float64, ok bool) {
	if dt <= 0 {
		return 0, false
	}
	return dJoules / dt.Seconds(), true
}

// Celsius decodes THERM_STATUS/PACKAGE_THERM_STATUS against TjMax
// (TEMPERATURE_TARGET bits 23:16). ok is false when the readout is not
// marked valid (for THERM_STATUS; pass requireValid false for the package
// register).
func Celsius(thermStatus, temperatureTarget uint64, requireValid bool) (c float64, ok bool) {
	below, valid := ThermReadout(thermStatus)
	if requireValid && !valid {
		return 0, false
	}
	return float64(TjMax(temperatureTarget) - below), true
}
