// SPDX-License-Identifier: Apache-2.0

package tracker

// The BPF objects are built from bpf/*.bpf.c by bpf2go; the generated
// *_bpfel.go and *_bpfel.o files are committed (make check-generated
// verifies they are current).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel -type event tracker ../bpf/tracker.bpf.c -- -I../bpf
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel -type probe_args -type batch_args -type batch_buf probe ../bpf/probe.bpf.c -- -I../bpf
