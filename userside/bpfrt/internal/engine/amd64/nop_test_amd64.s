//go:build amd64 && linux

#include "textflag.h"

TEXT ·nop(SB), NOSPLIT, $0-0
	RET

TEXT ·nopAddr(SB), NOSPLIT, $0-8
	LEAQ ·nop(SB), AX
	MOVQ AX, ret+0(FP)
	RET
