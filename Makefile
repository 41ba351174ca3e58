# Fresh machine: `make demo` runs the main job on the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# neurobench is the reference implementation the tests compare against; its declared
	# dependencies would pull unpinned torch builds, so it goes in without them.
	$(BIN)/python -m pip install --quiet --no-deps neurobench==2.3.0
	# compile and cache the fast step kernels once (numba), not in the first stream or test
	$(BIN)/python -c "from motordecode.decoders.fast import compile_fast_steps; compile_fast_steps()"
	touch $(STAMP)

demo: install
	$(BIN)/motordecode demo

# the export tests compile C with the system compiler and read its sizes with binutils' size
tools:
	@command -v cc >/dev/null && command -v size >/dev/null && command -v redis-server >/dev/null || \
		( [ "$$(id -u)" = 0 ] && apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev binutils redis-server ) || \
		( echo "install a C compiler, binutils and redis-server: sudo apt-get install gcc libc6-dev binutils redis-server"; exit 1 )

test: install tools
	$(BIN)/python -m pytest -q

bench: install tools
	$(BIN)/python benchmarks/bench_data_pipeline.py
	$(BIN)/python benchmarks/bench_harness.py
	$(BIN)/python benchmarks/bench_streaming_latency.py
	$(BIN)/python benchmarks/bench_aegru_pipeline.py
	$(BIN)/python benchmarks/bench_rsnn_training.py --batches 6
	$(BIN)/python benchmarks/bench_rsnn_pipeline.py
	$(BIN)/python benchmarks/bench_export_latency.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis
