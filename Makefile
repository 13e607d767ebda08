# trailwatch: the two commands a new machine needs are `make demo` and `make test`.
# Both install what they need (a Python venv for the conformance test; cargo-fuzz
# for `make fuzz`) under the project, in git-ignored folders.

CARGO ?= cargo
# The public datasets: beside the checkout, else where this machine keeps them.
DATASETS ?= $(firstword $(wildcard ../shared/datasets /work/shared/datasets) ../shared/datasets)
export TRAILWATCH_DATASETS := $(abspath $(DATASETS))
DEMO_DIR := demo
FUZZ_SECONDS ?= 120
BENCH_TARGET ?= 500MB

.PHONY: all build demo test check fmt clippy pyenv fuzz bench clean

all: build

build:
	$(CARGO) build

## demo: build, lay out a CloudTrail-style tree from the public datasets, scan it
demo: build
	python3 scripts/sample_tree.py --datasets $(DATASETS) --out $(DEMO_DIR)/tree --force
	./target/debug/trailwatch scan --format table $(DEMO_DIR)/tree

## test: formatting, lints, the emulators, every test (unit, integration,
## conformance, emulator crawls, fuzz regressions) and the rules' own examples
test:
	bash scripts/test.sh

pyenv:
	bash scripts/pyenv.sh

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

## fuzz: the decoder fuzz target, time-boxed (FUZZ_SECONDS, default 120)
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## bench: release build, a corpus of BENCH_TARGET decompressed, records/s and peak RSS of scan
bench:
	bash scripts/bench.sh $(BENCH_TARGET)

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR)
