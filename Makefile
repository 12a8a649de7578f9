# Every target sets itself up: a fresh clone needs only `make run` or `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run run-full test test-all lint bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: verify and time the built-in kernels of the `llm` suite against torch eager
# (quick verification: one seed, two input distributions; 0.5 s of timing per side).
run: $(STAMP)
	$(VENV)/bin/karena suite run llm --solutions builtin --baseline eager --quick --budget 0.5

# The same, thorough: two seeds, every input distribution, determinism rerun, 3 s per side.
run-full: $(STAMP)
	$(VENV)/bin/karena suite run llm --solutions builtin --baseline eager --full

# The default test command (what CI runs): everything but `slow`; `gpu` tests skip without a GPU.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/timer_fidelity.py

clean:
	rm -rf .karena .pytest_cache .mypy_cache .ruff_cache
