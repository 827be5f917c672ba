package msr

//go:generate go run ../tools/kgen/cmd/kgen -what msr -o ../kmod/include/generated/kushm_msr.h
