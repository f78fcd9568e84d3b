# Mysos: MySQL clusters on Apache Mesos.
#   make demo   a real replicated MariaDB cluster on a dev Mesos cluster (Ctrl-C stops it)
#   make test   everything CI runs (installs missing dependencies first)

GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION) -X github.com/mysos-project/mysos/pkg/ctl.Version=$(VERSION)
export GOFLAGS := -buildvcs=false

.PHONY: all build test unit lint deps demo demo-stop bench fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps:
	hack/install-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The whole suite: unit, store and API tests against real etcd (embedded and
# Debian's), the CLI end to end against built binaries, then each fuzzer for 15 s.
test: deps lint
	$(GO) test -race -count=1 -timeout 25m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=15s

demo: deps build
	hack/demo.sh

demo-stop:
	hack/demo.sh stop

# Every benchmark docs/benchmarks.md reports (about 10 minutes): raw output
# in docs/benchmarks-raw.txt, tables regenerated in docs/benchmarks.md.
bench: deps
	hack/bench.sh

# Each fuzzer for FUZZTIME (go test fuzzes one target at a time). An input
# that fails is written to the package's testdata/fuzz/<Fuzzer>/: commit it
# with the fix.
FUZZTIME ?= 60s

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/spec/
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) ./pkg/apiserver/

clean:
	rm -rf $(BIN) .demo
