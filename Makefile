# SPDX-License-Identifier: Apache-2.0
GO ?= go
export CGO_ENABLED ?= 0

.PHONY: all build check deps test vet generate check-generated demo

all: build

build:
	$(GO) build ./...

deps:
	scripts/deps.sh

generate:
	$(GO) generate ./...

# check-generated fails when committed generated files are out of date.
check-generated: generate
	git diff --exit-code --stat -- . ':(exclude)go.sum' || \
		(echo "generated files are stale: run 'make generate' and commit" >&2; exit 1)

vet:
	$(GO) vet ./...

# No literal region offset outside internal/abi (tools/offsetcheck; its
# test proves it fails on a planted one).
.PHONY: offset-check
offset-check:
	$(GO) run ./tools/offsetcheck/cmd/offsetcheck ./...

test:
	$(GO) test -count=1 ./...

# check is the README's test command: everything, qemu kernel tests included.
check: deps check-generated check-web vet offset-check test model-check vmtest

# pmu/msr (issue 3): short fuzz runs of their parsers; the corpora live in
# testdata/fuzz of each package.
.PHONY: fuzz-pmu-msr
fuzz-pmu-msr:
	$(GO) test -run XXX -fuzz FuzzParseCPUList -fuzztime 15s ./pmu
	$(GO) test -run XXX -fuzz FuzzParseCPUInfo -fuzztime 15s ./pmu
	$(GO) test -run XXX -fuzz FuzzParseAllowlist -fuzztime 15s ./msr
	$(GO) test -run XXX -fuzz FuzzParseEvent -fuzztime 15s ./internal/sysfsev
	$(GO) test -run XXX -fuzz FuzzParseGroup -fuzztime 15s ./internal/sys/perfsys

# bpf-objects rebuilds userside/bpfrt's committed BPF test objects
# (clang-14); TestObjectsFresh fails when they are stale.
.PHONY: bpf-objects bench-filter bench-lttng
bpf-objects:
	$(MAKE) -C userside/bpfrt/testdata

# bench-filter runs the userspace eBPF filter benchmark (docs/benchmarks.md).
bench-filter:
	$(GO) test -run '^$$' -bench 'BenchmarkFilter' -benchtime=2000000x -count=3 ./userside/bpfrt

# bench-lttng: the filter benchmark as a tracing hot path, LTTng-UST's
# filtered tracepoint against kushm's (interpreter, JIT, no filter). Starts
# its own lttng-sessiond; not part of `make check` (TestLTTngBenchBuilds
# builds its C side there).
bench-lttng:
	GO=$(GO) sh scripts/bench-lttng.sh

# kernel module (issue 5): the kernel tests (TestVM* of the packages in
# tools/vmtest/packages.txt) in Debian's 6.1 and 6.12 cloud kernels and
# its 6.12 PREEMPT_RT kernel (issue 12) under qemu; KERNEL=6.1, 6.12 or
# 6.12-rt for one. scripts/vm/setup.sh installs qemu and the headers and
# caches the kernel images (~/.cache/kushm/vm).
KERNEL ?= 6.1,6.12,6.12-rt
# The module under test is built exactly as `dkms build` builds it (issue
# 12); VMTEST_BUILD=make builds it with kmod/Makefile instead.
VMTEST_BUILD ?= dkms
comma := ,
.PHONY: vmtest vmtest-selftest kmod kmod-utest
vmtest:
	scripts/vm/setup.sh $(subst $(comma), ,$(KERNEL))
	$(GO) run ./tools/vmtest/cmd/kushm-vmtest -kernel $(KERNEL) -build $(VMTEST_BUILD)

# The harness's own check: guest tests that log a kernel WARNING, and
# what PREEMPT_RT and lockdep report (sleeping in atomic context,
# scheduling while atomic, lock order), must fail the run; run in the
# PREEMPT_RT kernel.
vmtest-selftest:
	scripts/vm/setup.sh 6.12-rt
	$(GO) run ./tools/vmtest/cmd/kushm-vmtest -kernel 6.12-rt -v=false -run TestVMSelftest \
		github.com/kushm/kushm/tools/vmtest/testdata/selftest > vmtest-selftest.log 2>&1; \
	rc=$$?; for p in 'WARNING: CPU: 0 PID: 1 at kushm/vmtest/selftest.c' \
		'BUG: sleeping function called from invalid context at kushm/vmtest/selftest.c' \
		'BUG: scheduling while atomic: kushm-selftest' \
		'WARNING: possible circular locking dependency detected in kushm-selftest'; do \
		grep -q "dmesg: .*$$p" vmtest-selftest.log || { echo "vmtest-selftest: '$$p' did not fail the run" >&2; exit 1; }; \
	done; [ $$rc -ne 0 ] || { echo "vmtest-selftest: the run passed" >&2; exit 1; }; rm -f vmtest-selftest.log
	@echo "vmtest-selftest: kernel WARNINGs, atomic-context and lockdep reports fail the run: ok"

kmod:
	$(MAKE) -C kmod

# The C twins of rcuhash/atomicarr checked in userspace against Go's vectors.
kmod-utest:
	$(MAKE) -C kmod utest

# kfuncs (issue 6): module-BTF build trees; builds a one-kfunc module per
# kernel series and checks its .BTF and resolved .BTF_ids.
.PHONY: kbtf-check
kbtf-check:
	scripts/kbtf/kbtf.sh check 6.1
	scripts/kbtf/kbtf.sh check 6.12

# The region protocols (rcuhash, atomicarr) model-checked with spin, with
# mutants that must be caught (model/check.sh).
.PHONY: model-check
model-check:
	model/check.sh

# provider (issue 4): the README's main-job command, the provider
# benchmarks (docs/benchmarks.md) and short fuzz runs of its parsers.
.PHONY: bench-provider fuzz-provider
demo:
	$(GO) run ./cmd/kushm demo

bench-provider:
	$(GO) test -run '^$$' -bench 'CounterRead' -count=3 ./userside/client
	$(GO) test -run '^$$' -bench 'SampleTick|GroupRead8|Daemon100Hz' -count=3 ./userside/provider

fuzz-provider:
	$(GO) test -run XXX -fuzz FuzzParseProcStat -fuzztime 15s ./userside/provider
	$(GO) test -run XXX -fuzz FuzzParseInfo -fuzztime 15s ./userside/client
	$(GO) test -run XXX -fuzz FuzzClientRegion -fuzztime 15s ./userside/client

# The speed goals' benchmarks, six runs each, summarised by benchstat
# (median and spread); docs/benchmarks.md records the figures and the
# ratios between benchmarks of the same run.
.PHONY: bench
bench:
	$(GO) test -run XXX -bench . -count 6 ./rcuhash ./atomicarr > bench-region.txt
	$(GO) test -run XXX -bench CounterRead -count 6 ./userside/client > bench-provider.txt
	$(GO) test -run '^$$' -bench BenchmarkFilter -benchtime=2000000x -count 6 ./userside/bpfrt > bench-filter.txt
	$(GO) tool benchstat bench-region.txt bench-provider.txt bench-filter.txt
	@echo "per-cgroup (root): make bench-cgroups"

# per-cgroup counting (issue 14, root): the sched_switch program's cost
# (ping-pong off/on, the kernel's own measure per switch) and the
# daemon's copy of 1,000 cgroups (docs/benchmarks.md).
.PHONY: bench-cgroups
bench-cgroups:
	$(GO) test -run '^$$' -bench PingPong -benchtime 40000x -count 10 ./internal/cgbpf > bench-cgroups.txt
	$(GO) test -run '^$$' -bench Cgroups1000 -benchtime 50x -count 6 ./userside/provider >> bench-cgroups.txt
	$(GO) tool benchstat -col /mode bench-cgroups.txt

# web view (issue 16): the page's third-party assets (uPlot, pinned in
# userside/web/npm/package-lock.json with its integrity hash) from the npm
# registry; the copies in userside/web/assets/vendor are committed and
# embedded (go:embed), and check-web fails when they differ from what the
# lock file yields.
WEB_NPM := userside/web/npm
WEB_VENDOR := userside/web/assets/vendor
.PHONY: web check-web
web:
	cd $(WEB_NPM) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cp $(WEB_NPM)/node_modules/uplot/dist/uPlot.iife.min.js $(WEB_NPM)/node_modules/uplot/dist/uPlot.min.css $(WEB_VENDOR)/
	cp $(WEB_NPM)/node_modules/uplot/LICENSE $(WEB_VENDOR)/uPlot.LICENSE

check-web: web
	@test -z "$$(git status --porcelain -- $(WEB_VENDOR))" || \
		(git status --short -- $(WEB_VENDOR); echo "web assets are stale: run 'make web' and commit" >&2; exit 1)

# The README's screenshot (docs/web.png), taken by the browser test of the
# page of `kushm serve --listen` (needs chromium).
.PHONY: web-screenshot
web-screenshot:
	KUSHM_SCREENSHOT=$(CURDIR)/docs/web.png $(GO) test -count=1 -run 'TestBrowserDaemon$$' ./cmd/kushm
