//go:build amd64 && linux

#include "textflag.h"

// func enter(pc uintptr, c *Context)
//
// Calls generated code at pc with R12 = c. The code keeps nothing on this
// stack but the return address (its frames live in the Context and its
// eBPF stack in the VM) and clobbers every general register: the frame
// pointer is restored by the epilogue, and Go reloads g (R14) after an
// ABI0 call.
TEXT ·enter(SB), NOSPLIT, $8-16
	MOVQ pc+0(FP), AX
	MOVQ c+8(FP), R12
	CALL AX
	RET
