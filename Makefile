# Latchkey: build, run and test. Every target uses the pinned Go toolchain, which fixes
# standard-library advisories that older releases still have.
export GOTOOLCHAIN := go1.27.3

GO  ?= go
BIN ?= bin/latchkey

.PHONY: run build test check vet fmt bench clean

## run: start the server on SQLite in ./latchkey-data (prints the Default project's secret on first start)
run:
	$(GO) run ./cmd/latchkey serve

## build: build the binary into bin/latchkey
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/latchkey

## test: gofmt check, go vet and every test (PostgreSQL tests run when PostgreSQL is up)
test:
	scripts/test.sh

## check: go mod tidy, staticcheck, govulncheck (offline database) and the race detector
check:
	scripts/checks.sh

## vet: go vet every package
vet:
	$(GO) vet ./...

## fmt: rewrite every Go file in gofmt's form
fmt:
	gofmt -w .

## bench: run the benchmarks (no tests)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
