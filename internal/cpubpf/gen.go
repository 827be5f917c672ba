// SPDX-License-Identifier: Apache-2.0

package cpubpf

// The BPF object is built from bpf/cpusample.bpf.c by bpf2go; the
// generated *_bpfel.go and *_bpfel.o files are committed (make
// check-generated verifies they are current). -mcpu=v3: the sequence
// count's increments are atomic (BPF_ATOMIC).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target bpfel -type cpu_sample -type cpu_timer cpusample ../../bpf/cpusample.bpf.c -- -I../../bpf
