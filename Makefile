# tramp: see README.md. Every target works on a fresh Debian machine with Go;
# the VM targets install QEMU and fetch Debian's kernels (cached) first.
GO         ?= go
PKGS       := ./...
# Kernels the test suite boots, each on x86_64 and arm64: a bounded
# subset of the served builds (tramp vm kernels): the oldest branch
# (6.12 LTS, trixie), the last branch before fsession, the primary
# fsession kernel (sid) and the newest release. The whole matrix is
# tramp vm check --kernel all (README, Every build).
VM_KERNELS ?= debian-6.12.117,debian-6.18.15,debian-7.2.13,debian-7.3.4
# riscv64 and s390x (Debian builds no cloud flavour of them, and its s390x
# has no BPF JIT): the primary build. The mirror serves no 7.3.4 for
# either (the index lists it, the pool answers 404).
MORE_KERNELS ?= debian-7.2.13
MORE_ARCHES  ?= riscv64,s390x
comma      := ,
TRAMP      := bin/tramp
# TRAMP_ACCEL (auto, kvm or tcg) chooses the accelerator of every boot;
# auto (the default) uses KVM where a probe boot shows it works.
export TRAMP_ACCEL
HOST_ARCH  := $(shell uname -m | sed -e s/aarch64/arm64/)

.PHONY: all build check test unit vmtest setup lint bench fuzz record rebuild clean

all: build

build:
	@echo "building $(TRAMP) (go build ./cmd/tramp)"
	$(GO) build -o $(TRAMP) ./cmd/tramp

# The main job on its built-in defaults: boot Debian 7.2.13 on x86_64 and
# arm64, run the case corpus, compare everything with the model.
check: build
	scripts/setup debian-7.2.13
	$(TRAMP) vm check

# Everything CI runs.
test: lint unit vmtest

# Unit tests, and the VM integration tests (TRAMP_VM=1: they fail, never
# skip, when QEMU or a kernel is missing). -p 1 keeps to one package at a
# time so that at most two VMs share the two cores.
unit: setup
	TRAMP_VM=1 $(GO) test -count=1 -p 1 $(PKGS)

# The corpus in real kernels, compared with the model; a bounded run of
# random attach/detach sequences; the shapes of real kernel functions.
vmtest: setup build
	$(TRAMP) vm accel
	$(TRAMP) vm check --kernel $(VM_KERNELS) --arch x86_64,arm64
	$(TRAMP) vm check --kernel $(MORE_KERNELS) --arch $(MORE_ARCHES)
	$(TRAMP) vm fuzz --seed 1 --ops 150 --arch x86_64,arm64,riscv64
	$(TRAMP) vm shapes --kernel debian-7.2.13 --arch x86_64,arm64,riscv64
	# a CPU model with a return thunk and call-depth accounting (x86_64)
	$(TRAMP) vm check --kernel debian-7.2.13 --arch x86_64 --cpu Skylake-Client --append retbleed=stuff
	# Where KVM runs the host's arch, the TCG path is kept from rotting:
	# the corpus and the fault tests once more under TCG.
	@if [ "$$($(TRAMP) vm accel --short --accel auto --arch $(HOST_ARCH))" = kvm ]; then \
		echo "KVM works here: one TCG leg as well"; \
		TRAMP_ACCEL=tcg $(TRAMP) vm check --kernel debian-7.2.13 --arch $(HOST_ARCH) && \
		TRAMP_ACCEL=tcg TRAMP_VM=1 $(GO) test -count=1 -run 'TestVM(Panic|Hang|Killed)' ./vm/harness; \
	else echo "no working KVM for the host's arch: every boot above ran under TCG"; fi

# The VM check in SHARDS shards (tramp vm check --shard i/n), run here one
# after another as a CI matrix runs them side by side, then merged into
# one table, JSON, JUnit XML and Markdown summary under MATRIX_DIR.
SHARDS        ?= 1
MATRIX_ARCHES ?= x86_64,arm64
MATRIX_DIR    ?= bin/matrix
.PHONY: matrix
matrix: setup build
	@rm -rf $(MATRIX_DIR) && mkdir -p $(MATRIX_DIR)
	@for i in $$(seq 1 $(SHARDS)); do \
		echo "shard $$i/$(SHARDS): $(MATRIX_DIR)/shard-$$i.txt"; \
		$(TRAMP) vm check --kernel $(VM_KERNELS) --arch $(MATRIX_ARCHES) --shard $$i/$(SHARDS) --json $(MATRIX_DIR)/shard-$$i.json >$(MATRIX_DIR)/shard-$$i.txt; \
	done; true
	$(TRAMP) report merge --json $(MATRIX_DIR)/merged.json --junit $(MATRIX_DIR)/junit.xml --markdown $(MATRIX_DIR)/summary.md $(MATRIX_DIR)/shard-*.json

setup:
	scripts/setup $(subst $(comma), ,$(VM_KERNELS))

# Rebuilds (kernels.Rebuilds), KERNEL:ARCH: s390x with a BPF JIT (Debian
# builds s390x for z10, where arch/s390 has no eBPF JIT, so tramp vm build
# compiles Debian's own source and config for z196), and the 7.3.4 builds
# the archive lists but does not serve (riscv64, s390x), from Debian's
# 7.3.4 source with trixie's compilers in a debootstrap chroot. Each is
# compiled into the cache (20 to 35 min on two cores), then the corpus
# and the shapes are recorded there. The recordings are in cases/testdata
# and replayed offline by go test; make test does not rebuild.
REBUILDS ?= debian-7.2.13+z196:s390x debian-7.3.4+z196:s390x debian-7.3.4+rebuild:riscv64
rebuild: build
	TRAMP_SETUP_REBUILD=1 TRAMP_SETUP_NO_FETCH=1 scripts/setup
	set -e; for ka in $(REBUILDS); do \
		$(TRAMP) vm build --kernel $${ka%%:*} --arch $${ka#*:}; \
		$(TRAMP) vm record --kernel $${ka%%:*} --arch $${ka#*:}; \
		$(TRAMP) vm shapes --record --kernel $${ka%%:*} --arch $${ka#*:}; \
	done

# Re-record cases/testdata from real kernels (read the diff before committing;
# then go test ./vm/record -run TestRecordedImages -update pins the new counts).
record: setup build
	$(TRAMP) vm record --kernel debian-7.2.13,debian-7.3.4,debian-6.18.15
	$(TRAMP) vm record --kaslr --kernel debian-7.2.13,debian-7.3.4
	$(TRAMP) vm shapes --record --kernel debian-7.2.13,debian-7.3.4
	# x86_64 CPU models whose mitigations change the bytes (<case>.cpu-<model>.json)
	$(TRAMP) vm record --arch x86_64 --cpu EPYC-Rome --kernel debian-7.2.13,debian-7.3.4
	$(TRAMP) vm record --arch x86_64 --cpu EPYC-Milan --kernel debian-7.2.13,debian-7.3.4
	$(TRAMP) vm record --arch x86_64 --cpu Cascadelake-Server --kernel debian-7.2.13,debian-7.3.4
	$(TRAMP) vm record --arch x86_64 --cpu Skylake-Client --append retbleed=stuff --kernel debian-7.2.13,debian-7.3.4
	$(TRAMP) vm shapes --record --arch x86_64 --cpu EPYC-Rome --kernel debian-7.2.13
	$(TRAMP) vm shapes --record --arch x86_64 --cpu Skylake-Client --append retbleed=stuff --kernel debian-7.2.13

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	# the GitHub Actions workflow (actionlint is a tool of go.mod)
	$(GO) tool actionlint .github/workflows/tramp.yml

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# A short run of each fuzz target (go test fuzzes one target at a time).
FUZZTIME ?= 20s
FUZZ_TARGETS := FuzzParse:./cases/ FuzzQEMUStderr:./vm/qemu/ FuzzDecode:./arch/x86/ FuzzDecode:./arch/arm64/ FuzzDecode:./arch/riscv64/ FuzzDecode:./arch/s390x/ FuzzMemoDecode:./arch/x86/ FuzzMemoDecode:./arch/arm64/ FuzzDecode:./vm/channel/ FuzzKallsyms:./cmd/tramp-guest/bpfobs/ FuzzKcore:./cmd/tramp-guest/bpfobs/ FuzzDecodeRecords:./cmd/tramp-guest/bpfobs/ FuzzFilterFunctions:./cmd/tramp-guest/bpfobs/ FuzzTargetProg:./cmd/tramp-guest/bpfobs/ FuzzEmu:./emu/ FuzzParse:./vm/recording/ FuzzParsePack:./vm/recording/ FuzzBTFFromImage:./vm/kernels/ FuzzParseCatalog:./vm/kernels/ FuzzParseBuildTable:./trampoline/ FuzzParse:./vm/report/
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} in $${t#*:}"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}" || exit 1; \
	done

clean:
	rm -rf bin
