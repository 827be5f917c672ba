package pmu

//go:generate go run ../tools/kgen/cmd/kgen -what pmu -o ../kmod/include/generated/kushm_pmu.h
