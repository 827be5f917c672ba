package msr

//go:generate go run ../internal/kgen/cmd/kgen -what msr -o ../kmod/include/generated/kushm_msr.h
