// SPDX-License-Identifier: Apache-2.0

package cgbpf

// The BPF object is built from bpf/cgroups.bpf.c by bpf2go; the generated
// *_bpfel.go and *_bpfel.o files are committed (make check-generated
// verifies they are current).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel -type cg_stat cgroups ../../bpf/cgroups.bpf.c -- -I../../bpf
