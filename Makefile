# Every target builds its own .venv on a fresh machine. constraints.txt pins the CPU build of
# torch, so no multi-GB CUDA build is pulled in.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mseplug demo

test: $(STAMP)
	$(BIN)/ruff check mseplug tests benchmarks
	$(BIN)/mypy mseplug
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/mseplug bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
