# trailwatch: the two commands a new machine needs are `make demo` and `make test`.
# Both install what they need (a Python venv for the conformance test; cargo-fuzz
# for `make fuzz`) under the project, in git-ignored folders.

CARGO ?= cargo
# The public datasets: ../shared/datasets beside the checkout (DATASETS=DIR
# names another folder). Tests, the demo and the benchmarks read them in place.
DATASETS ?= ../shared/datasets
export TRAILWATCH_DATASETS := $(abspath $(DATASETS))
DEMO_DIR := demo
FUZZ_SECONDS ?= 120

.PHONY: all build demo demo-scan test check fmt clippy pyenv fuzz chaos bench dist clean

all: build

build:
	$(CARGO) build

## demo: emulators + seeded world, one crawl with `trailwatch once`, the alerts as a table
demo:
	bash scripts/demo.sh

## demo-scan: the offline hunt: a CloudTrail-style tree from the datasets, scanned
demo-scan: build
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

## chaos: the chaos suite (CHAOS_MINUTES, default 4; 60 for the long run)
chaos:
	bash scripts/chaos.sh

## fuzz: the decoder fuzz target, time-boxed (FUZZ_SECONDS, default 120)
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## bench: issue 7's report (BENCHMARKS.md): a generated corpus (BENCH_SIZE, 1GB),
## scan beside pigz, pySigma's DuckDB backend and rsigma, the match and memory
## checks, the crawler against LocalStack; the table lands in bench/report.md.
## Micro-benchmarks: cargo bench.
bench:
	bash scripts/bench.sh

## dist: the release binary and a Debian package (cargo-deb, pinned) with SHA-256
## sums under target/dist/; as root, the package installed, checked and removed
dist:
	bash scripts/dist.sh

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR)
