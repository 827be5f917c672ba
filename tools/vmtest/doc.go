// Package vmtest runs kushm's kernel tests: ordinary Go tests that need a
// real kernel with the kushm module loaded, run inside Debian's own
// kernels (6.1 and 6.12, bookworm's two LTS series, as cloud builds, and
// 6.12's PREEMPT_RT build, series "6.12-rt") booted in qemu.
//
// The host kernel of a development machine or CI runner often cannot load
// modules (it boots with nomodule, lacks headers, or must not be touched),
// so the tests never load anything into the host. Instead the host side
// (Run, driven by `make vmtest` through cmd/kushm-vmtest):
//
//  1. builds kmod/ once per kernel: with kmod/Makefile against that
//     kernel's headers (Options.Build "make"), or exactly as users'
//     `dkms build` builds it, in private DKMS trees (Build "dkms", what
//     `make vmtest` uses: BuildModuleDKMS),
//  2. builds each package listed in packages.txt with `go test -c`
//     (CGO_ENABLED=0, so the binary is static),
//  3. packs busybox, the module, the test binaries and their testdata into
//     an initramfs whose /init mounts devtmpfs, proc, sysfs, debugfs and
//     tmpfs, runs every binary with -test.v and powers off,
//  4. boots the kernel under qemu (TCG, never KVM) with a timeout, streams
//     the serial console, and brings back each package's result and the
//     guest's dmesg. A run fails when a package fails, when the guest
//     does not reach its end marker, or when dmesg holds a WARNING, BUG,
//     Oops, Call Trace or a similar kernel complaint, including what
//     PREEMPT_RT and lockdep report ("BUG: sleeping function called from
//     invalid context", "BUG: scheduling while atomic", lock-order
//     reports). Complaints logged while the kernel booted, before /init
//     started (no kushm code had run), are listed in the summary but do
//     not fail the run: a TCG guest starved by a loaded host can report an
//     RCU stall there.
//
// # Writing a kernel test
//
// A kernel test is a Go test whose name starts with TestVM and whose first
// statement is vmtest.Require(t):
//
//	func TestVMLoadUnload(t *testing.T) {
//		vmtest.Require(t)
//		...
//	}
//
// On the host `go test ./...` skips it with a clear reason; inside the
// guest Require returns and the test runs as root with the module file at
// ModulePath() (not loaded: load it with internal/modload, or call
// LoadModule). Add the test's package to packages.txt (one import path a
// line) so the harness builds and runs it; the guest runs only tests
// matching ^TestVM (override with VMTEST_RUN) and the package's testdata
// directory is copied next to the binary, which runs in that directory as
// `go test` would.
//
// # Running
//
//	make vmtest                 # all kernels (KERNEL=6.1, 6.12 or 6.12-rt for one)
//	VMTEST_BUILD=make make vmtest  # build with kmod/Makefile instead of dkms
//	VMTEST_RUN=TestVMProcs make vmtest KERNEL=6.12
//	go run ./tools/vmtest/cmd/kushm-vmtest -kernel 6.1 github.com/kushm/kushm/internal/modload
//	make vmtest-selftest        # proves WARNING, atomic-context and lockdep reports fail the run
//
// Environment: KUSHM_VM_CACHE (cache directory, default ~/.cache/kushm/vm,
// deletable), KUSHM_VM_NO_BTF=1 (build against the plain headers, without
// the module-BTF tree of scripts/kbtf), VMTEST_RUN (-test.run in the
// guest), VMTEST_LOGLEVEL (guest console loglevel, default 4),
// VMTEST_ACCEL (qemu -accel, default tcg,thread=single; never KVM),
// VMTEST_CMDLINE (extra kernel command line). Each run works in a private
// directory under the cache (removed when it passes); the latest console
// log of each kernel is kept as CACHE/work/KVER.console.log.
//
// Inside the guest the tests run as root with a 2-CPU, 1 GiB machine,
// /bin/busybox (all applets), /bin/kushm (the CLI), the module at
// ModulePath() (with Build "dkms" and a kernel that compresses its
// modules, also DKMS's own kushm.ko.xz at CompressedModulePath()) and,
// when the cache has one, a module built for the other
// kernel at ForeignModulePath() (for version-magic tests).
//
// # Errors and lifetimes
//
// Run returns an error naming the kernel and the first thing that failed
// (a build, the boot, a package, dmesg); the full guest log is written
// under the work directory and streamed to Options.Log. Nothing outlives
// Run but the cache: kernel images and per-kernel module builds under
// CacheDir (deletable at any time).
package vmtest
