# The two commands: `make run` and `make test`. Both install what is
# missing first (scripts/setup.sh is idempotent).
SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
PYTHON  ?= /usr/bin/python3
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
ORT_LIB := $(CURDIR)/.deps/onnxruntime/lib/libonnxruntime.so
DATA    ?= data/birds
MODELS  ?= samples/models

export ORT_LIB_PATH ?= $(ORT_LIB)
# Browser tests write their screenshots here (kept by CI as artifacts).
export STUDIO_ARTIFACTS ?= $(CURDIR)/artifacts

.PHONY: run test test-unit build setup setup-test setup-train test-go test-fuzz test-python data train fmt vet clean bench tour

## run: install what is missing, build, and start the studio on :8080
run: setup build
	./bin/studio serve

## test: install what the tests need (Redis, Chromium, torch), run every test
test: setup-test vet test-go test-fuzz test-python

## test-unit: the tests that need nothing but Go (no Redis, Chromium, ONNX Runtime, Python or
## training): a quick loop for a change, under a minute. Test files that need a real part start
## with `//go:build !unit`; built without cgo, internal/ort compiles and reports ErrLibrary.
test-unit:
	CGO_ENABLED=0 $(GO) test -count=1 -tags unit ./...

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

setup-train:
	@scripts/setup.sh train

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/studio ./cmd/studio

# Both tiers: the files of the unit tier (-tags unit) are compiled here too.
vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet -tags unit ./...

test-go:
	$(GO) test -count=1 ./...

# Each fuzz target of the user-facing parsers, briefly (FUZZTIME each);
# `go test` alone runs only their seeds.
FUZZTIME ?= 3s
FUZZ     := textenc:FuzzTokenize studio:FuzzGenerationRequest studio:FuzzInterpolationRequest studio:FuzzUpload
test-fuzz:
	@for t in $(FUZZ); do \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/ || exit 1; \
	done

# pytest exits 5 when it collects nothing; that is a failure here too.
test-python:
	$(PYTHON) -m pytest -q

## data: the sample fine-grained data set in CUB-200-2011 layout
data: setup-train
	@if [ -f $(DATA)/images.txt ]; then echo "$(DATA) exists"; else $(PYTHON) -m samples.cubmaker --out $(DATA) --workers 2; fi

## train: train the four sample graphs (DEVICE=cuda on a GPU host) and export them to $(MODELS)
train:
	$(MAKE) data
	scripts/train.sh fit $(DATA) training/runs/birds
	MODELS=$(MODELS) scripts/train.sh export $(DATA) training/runs/birds

## bench: raw ONNX Runtime vs PyTorch eager per graph, scoring cost, end to end with 1/2/4 workers,
## API, queue, cold start and memory, measured in one run -> BENCHMARKS.md and BENCHMARKS.json
## (scripts/bench.sh; THREADS, ROUNDS, WORKERS, LIVE=0 ... tune it)
bench: setup-test
	scripts/bench.sh

## tour: the README's three screenshots of the web studio (docs/tour), made by the browser test
## TestTour on the real studio; STUDIO_MODELS_DIR and STUDIO_EXAMPLES_DIR pick other models and examples
tour: setup-test
	$(GO) test -count=1 -run '^TestTour$$' ./test/browser -args -tour $(CURDIR)/docs/tour

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
