# Every target builds its own .venv on a fresh machine. constraints.txt pins the CPU build of
# torch, so no multi-GB CUDA build is pulled in.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench docs docs-site clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mseplug demo

test: $(STAMP)
	$(BIN)/ruff check mseplug tests benchmarks docs
	$(BIN)/mypy mseplug
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory docs-site

# The site in site/: figures drawn from mseplug (docs/make_figures.py), then MkDocs with --strict,
# so a broken link, a bad docstring or a missing page fails. `make docs` also runs
# `mseplug bench --quick --json` for the benchmark charts (skipped with a note where the
# command has no --json); `make test` builds the site without running the benchmark.
docs: $(STAMP)
	$(BIN)/python docs/make_figures.py --bench
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-site: $(STAMP)
	$(BIN)/python docs/make_figures.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/mseplug bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site docs/generated build dist
