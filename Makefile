# OpenTSP: `make demo` runs the main job, `make test` runs the tests.
# Each target creates and fills .venv from PyPI on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= default
SEEDS ?= 1000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo demo-digits test test-slow test-icarus iverilog regress regress-nightly coverage lint ruff verilog synth fpga \
	bench bench-compiler bench-llama bench-fp clean venv fuzz multichip-regress multichip-rtl \
	multichip-lm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# A transformer decoder generates text on the RTL in Verilator (opentsp/app/lm_demo.py): the
# Zen of Python model, one decode step per start of the `lm` chip, token for token against the
# compiler's reference. PROMPT="..." (default "Beautiful is ") and TOKENS=N change the run;
# LM_FLAGS="--golden" also runs the golden model's session.
TOKENS ?= 40
demo: $(STAMP)
	$(BIN)/python -m opentsp.app.lm_demo $(if $(PROMPT),--prompt "$(PROMPT)") --tokens $(TOKENS) \
		$(LM_FLAGS)

# The digits MLP compiled and run on the RTL in Verilator (opentsp/app/demo.py), as one program
# on `wide` (the default chip with 8 x 8 MXMs); DEMO_CONFIG=default runs it as three programs.
DEMO_CONFIG ?= wide
demo-digits: $(STAMP)
	$(BIN)/python -m opentsp.app.demo --config $(DEMO_CONFIG)

ruff: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) ruff iverilog
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" -n auto --dist loadgroup

# Icarus Verilog, the second simulator (Debian's iverilog: PyPI has none), installed if missing.
iverilog:
	@command -v iverilog >/dev/null && command -v vvp >/dev/null || \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y iverilog; \
	else \
		echo "make iverilog: iverilog/vvp missing; install Debian's iverilog:" \
		     "sudo apt-get install iverilog" >&2; exit 1; \
	fi

# Every cocotb test on Icarus Verilog instead of Verilator (the slow ones excluded).
test-icarus: $(STAMP) iverilog
	SIM=icarus $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" tests/cosim

# The multi-chip examples (docs/multichip.md) on the multi-chip golden model, RUNS times each with
# the links' latencies and the chips' start times drawn at random: every run must agree.
RUNS ?= 1000
multichip-regress: $(STAMP)
	for source in firmware/examples/multichip/*.s; do \
		$(BIN)/opentsp system $$source --runs $(RUNS) || exit 1; done

# The same examples on the RTL: the chips cabled in one Verilator simulation under cocotb
# (docs/verification.md, "Many chips on Verilator"; one build per chip count), RTL_RUNS draws
# of latencies and starts each, every draw against the golden model and the numpy results.
RTL_RUNS ?= 50
multichip-rtl: $(STAMP)
	$(BIN)/python -m opentsp.verif.system_runner firmware/examples/multichip/*.s --runs $(RTL_RUNS)

# The decoder of `make demo` split over two chips of a ring (opentsp.app.lm_split,
# docs/multichip.md): a session of LM_TOKENS tokens on the Verilated 2-chip `lm_c2c` system,
# every run against the multi-chip golden model, the composed reference and the single chip.
LM_TOKENS ?= 8
multichip-lm: $(STAMP)
	$(BIN)/python -m opentsp.app.lm_split --rtl --tokens $(LM_TOKENS)

# Long runs kept out of `make test`: the Verilator build and run of the `medium` config.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

build/$(CONFIG).v: $(STAMP) $(wildcard hdl/*.py hdl/*/*.py opentsp/*.py)
	$(BIN)/opentsp verilog --config $(CONFIG) -o $@

verilog: build/$(CONFIG).v

# Verilator lint of the generated Verilog, waivers explained in verif/lint.py.
lint: build/$(CONFIG).v
	$(BIN)/python -m opentsp.verif.lint build/$(CONFIG).v

synth: $(STAMP)
	$(BIN)/opentsp synth --config $(CONFIG)

# FPGA flow (docs/fpga.md): Yosys, nextpnr-ecp5 and ecppack from PyPI; the bitstream and the
# report (LUTs, FFs, DSPs, block RAMs, Fmax, critical path) land in build/fpga-BOARD-CONFIG/.
BOARD ?= ulx3s-85f
FPGA_CONFIG ?= fpga
fpga: $(STAMP)
	$(BIN)/opentsp fpga --board $(BOARD) --config $(FPGA_CONFIG)

# The bitstream's netlist checked without a board (docs/fpga.md): Yosys's synthesised netlist
# (build/fpga-BOARD-CONFIG/netlist.v, left by make fpga, or synthesised alone if missing;
# NETLIST_FLAGS="--synthesise always" makes a new one) in Verilator with the ECP5 cell models,
# a GEMM and two random programs loaded, run and read back through the UART pins, against the
# golden model (cycles and memories).
NETLIST_FLAGS ?=
.PHONY: fpga-netlist-sim
fpga-netlist-sim: $(STAMP)
	$(BIN)/python -m opentsp.app.netlist_sim --board $(BOARD) --config $(FPGA_CONFIG) \
		$(NETLIST_FLAGS)

# Random differential regression on Verilator (seeds from 1000 up; make test runs 0..199), in
# batches on a local Dask cluster of WORKERS processes (default: one per core), or on the
# workers of the scheduler at CLUSTER=tcp://host:8786 (docs/verification.md, "Regressions").
# A failing seed is left in build/regress/ (.bin and .s) with its replay command, the JUnit XML
# in build/regress/junit.xml; add REGRESS_FLAGS="--shrink" to reduce the first failure,
# "--coverage", "--mix vxm=3,sync=0", "--length 40", "--keep-going".
WORKERS ?=
CLUSTER ?=
FARM_FLAGS = $(if $(WORKERS),--workers $(WORKERS)) $(if $(CLUSTER),--cluster $(CLUSTER))
regress: $(STAMP)
	$(BIN)/python -m opentsp.verif.regress --seeds $(SEEDS) --config $(CONFIG) $(FARM_FLAGS) \
		$(REGRESS_FLAGS)

# The nightly regression: NIGHTLY_SEEDS programs (seeds from NIGHTLY_FIRST) over 8 suites,
# configurations default and fpga x lengths 16 and 40 x wild and checker-clean programs, every
# one against the golden model bit for bit and cycle for cycle, all run (--keep-going), coverage
# merged per configuration against make coverage's thresholds.
NIGHTLY_SEEDS ?= 10000
NIGHTLY_FIRST ?= 100000
regress-nightly: $(STAMP)
	$(BIN)/python -m opentsp.verif.regress --seeds $(NIGHTLY_SEEDS) --first $(NIGHTLY_FIRST) \
		--config default,fpga --length 16,40 --wild-and-legal --keep-going --coverage \
		$(FARM_FLAGS) $(REGRESS_FLAGS)

# The long fuzz campaign beside make test's bounded one (tests/test_fuzz.py): FUZZ_EXAMPLES
# inputs per hypothesis test (six tests; 20,000 took 8 min on 2 shared cores), random search
# from FUZZ_SEED (random unless given; printed first: FUZZ_SEED=N replays a campaign).
# Hypothesis prints a failing example, shrunk.
FUZZ_EXAMPLES ?= 100000
fuzz: $(STAMP)
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "make fuzz: FUZZ_SEED=$$seed FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) (examples per test)"; \
	OPENTSP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_fuzz.py -m hypothesis --hypothesis-seed=$$seed --hypothesis-show-statistics

# Functional coverage of make test's random batch on the golden model; fails below the
# thresholds documented in verif/coverage.py.
coverage: $(STAMP)
	$(BIN)/python -m opentsp.verif.coverage --config $(CONFIG)

# Simulation speed on long_run.s in one run, for default and medium: Verilator under cocotb and
# from C++ (no Python), Icarus, Amaranth's simulator, and BASELINE's own model side by side;
# Verilog sizes and build times (fresh builds). Then where a short program's time goes.
BASELINE ?= 4018dbd
bench: $(STAMP) iverilog
	$(BIN)/python bench/speed.py --config default --config medium --sim verilator --sim icarus \
		--baseline $(BASELINE)
	$(BIN)/python bench/host_traffic.py --config $(CONFIG)

# Accuracy of the floating-point functions (opentsp/fp.py) against numpy float64.
bench-fp: $(STAMP)
	$(BIN)/python bench/fp_accuracy.py

# Compiler figures on default and groq; golden model on groq (minutes), default on the RTL.
bench-compiler: $(STAMP)
	$(BIN)/python bench/compiler.py --golden-groq --rtl

# One Llama-2 7B decoder layer at batch 1 scheduled for groq (about 10 minutes) and the picture
# of one decode step of the Zen model on lm (docs/transformer.md).
bench-llama: $(STAMP)
	$(BIN)/python bench/llama_layer.py --check --head --whole --plot docs/lm_step.png

clean:
	rm -rf build .pytest_cache
