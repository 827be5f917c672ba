package bpfrt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLTTngBenchBuilds: `make bench-lttng` needs a session daemon and is
// not run by the tests, but its script must keep building its LTTng-UST
// side (skipped where gcc or liblttng-ust-dev is missing).
func TestLTTngBenchBuilds(t *testing.T) {
	if testEngine == EngineJIT {
		t.Skip("engine-independent")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	if err := exec.Command("sh", "-c", "echo '#include <lttng/tracepoint.h>' | gcc -E - >/dev/null 2>&1").Run(); err != nil {
		t.Skip("no liblttng-ust-dev headers")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "../../scripts/bench-lttng.sh", "--build-only", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench-lttng.sh --build-only: %v\n%s", err, b)
	}
	if fi, err := os.Stat(filepath.Join(out, "lttng_bench")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable lttng_bench: %v", err)
	}
}
