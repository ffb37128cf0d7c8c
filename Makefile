# tramp: see README.md. Every target works on a fresh Debian machine with Go.
GO      ?= go
PKGS    := ./...

.PHONY: all build check test unit lint bench fuzz clean

all: build

build:
	$(GO) build -o bin/tramp ./cmd/tramp

# The main job on its built-in defaults.
check:
	$(GO) run ./cmd/tramp check

# Everything CI runs.
test: lint unit

unit:
	$(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# A short run of every fuzz target (go test runs one target at a time).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./cases/

clean:
	rm -rf bin
