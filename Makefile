# The README's front door. Everything real lives in CMake; this file only
# names the common jobs.  `make` builds build/rtscore (dev preset, -O2 -g).
.PHONY: all build deps deps-test test test-full demo bench fuzz format check-src clean train

all: build

deps:
	@bash scripts/install-deps.sh

deps-test:
	@bash scripts/install-deps.sh --test

build:
	@[ -f build/build.ninja ] || cmake --preset dev >/dev/null
	@cmake --build --preset dev

# Installs what is missing, builds with ASan+UBSan, runs every quick test.
test: deps-test
	@[ -f build-asan/build.ninja ] || cmake --preset asan >/dev/null
	@cmake --build --preset asan
	@bash scripts/run-tests.sh build-asan quick

test-full: deps-test
	@[ -f build-asan/build.ninja ] || cmake --preset asan >/dev/null
	@cmake --build --preset asan
	@bash scripts/run-tests.sh build-asan 'quick|full'

# Installs what is missing, builds, runs the fraud pipeline on the embedded default.
demo: deps build
	@./build/rtscore demo

# Trains the fraud model bundles (examples/fraud/model, model-logistic) from backfill output.
train: deps-test build
	@/usr/bin/python3 train/train_fraud.py --out examples/fraud

bench: deps-test
	@[ -f build-release/build.ninja ] || cmake --preset release >/dev/null
	@cmake --build --preset release
	@bash scripts/run-bench.sh build-release

fuzz:
	@[ -f build-fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

check-src:
	@bash tools/checksrc.sh

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf build build-asan build-tsan build-release build-fuzz
